// The signed-in user, their hospital (and its time zone) and where each
// role starts. Pages read it; main.js fills it.
import { get, setCSRF, cached } from "./api.js";
import { setZone } from "./ui.js";

export const session = { user: null, hospital: null };

export const clinical = ["county_doctor", "specialist", "referral_desk", "dispatched_doctor"];

export const has = (...roles) => !!session.user && roles.some((r) => session.user.roles.includes(r));

// home is where a role starts.
export function home() {
  if (has("referral_desk")) return "#/desk";
  if (has("county_doctor")) return "#/doctor";
  if (has("specialist", "dispatched_doctor")) return "#/sessions";
  if (has("program_office")) return "#/office";
  return "#/home";
}

// adopt takes a login or me answer as the current session.
export async function adopt(me) {
  setCSRF(me.csrf_token);
  session.user = me.user;
  session.hospital = null;
  try {
    session.hospital = await cached(`/hospitals/${me.user.hospital_id}`);
    setZone(session.hospital.time_zone || "Asia/Shanghai");
  } catch { setZone("Asia/Shanghai"); }
}

// restore reads the session from the cookie, so a reload keeps the user in.
export async function restore() {
  try {
    await adopt(await get("/auth/me"));
    return true;
  } catch { return false; }
}

export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
