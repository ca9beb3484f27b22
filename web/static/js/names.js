// Names for the ids tickets carry, read once per session.
import { get, cached } from "./api.js";

let hospitals = null;
export async function hospitalMap() {
  if (!hospitals) {
    hospitals = (async () => {
      const m = new Map();
      let cursor = "";
      do {
        const page = await get(`/hospitals?limit=200${cursor ? "&cursor=" + encodeURIComponent(cursor) : ""}`);
        for (const x of page.items) m.set(x.id, x);
        cursor = page.next_cursor || "";
      } while (cursor);
      return m;
    })().catch((e) => { hospitals = null; throw e; });
  }
  return hospitals;
}
export async function hospitalName(id) {
  const m = await hospitalMap();
  return m.has(id) ? m.get(id).name : "";
}
export async function departments(hospitalID) {
  return (await cached(`/hospitals/${hospitalID}/departments?limit=200`)).items;
}
export async function departmentName(hospitalID, id) {
  if (!hospitalID || !id) return "";
  try {
    const d = (await departments(hospitalID)).find((x) => x.id === id);
    return d ? d.name : "";
  } catch { return ""; }
}
const patients = new Map();
export function patient(id) {
  if (!patients.has(id)) patients.set(id, get(`/patients/${id}`).catch((e) => { patients.delete(id); throw e; }));
  return patients.get(id);
}
export function forgetNames() { hospitals = null; patients.clear(); }
