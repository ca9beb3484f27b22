// Remote clinics: the published slots a clinician may see. A county doctor
// books a place for a patient; a specialist publishes their own slots (the
// schedule is public a week ahead: the server says how far) and withdraws one.
import { get, post, qs, ApiError, background } from "../api.js";
import { t } from "../i18n.js";
import { h, clear, field, select, dateTime, toast, showErrors, clearErrors, fromLocalInput, dayISO, dialog } from "../ui.js";
import { session, has } from "../session.js";
import { hospitalName, departments, departmentName } from "../names.js";

export async function render(main) {
  const hid = session.user.hospital_id;
  const me = session.user.id;
  const body = h("tbody");
  const empty = h("p.muted.empty", t("clinic.none"));
  main.append(h("div.page-head", h("h1", t("clinic.title"))));
  if (has("specialist")) main.append(await publishForm(hid, () => background(load())));
  main.append(h("section.card", h("h2", t("clinic.slots")),
    h("div.table-wrap", h("table.list#slots", h("thead", h("tr", ["clinic.when", "col.other_hospital", "clinic.department", "clinic.places", "col.status", "clinic.action"].map((k) => h("th", { scope: "col" }, t(k))))), body)), empty));

  async function load() {
    // The coming two weeks, and the week after: a schedule is public 7 to 14 days ahead.
    const items = (await get("/clinic-slots" + qs({ limit: 200, to: new Date(Date.now() + 21 * 86400000).toISOString() }))).items;
    const rows = await Promise.all(items.map(async (s) => {
      const [hn, dn] = await Promise.all([hospitalName(s.hospital_id).catch(() => ""), departmentName(s.hospital_id, s.department_id)]);
      const free = s.capacity - s.booked;
      let action = null;
      if (s.status === "published" && s.hospital_id !== hid && free > 0 && has("county_doctor", "dispatched_doctor", "specialist")) {
        action = h("a.btn", { href: `#/clinic/${s.id}/book`, "data-slot": s.id }, t("clinic.book"));
      } else if (s.specialist_id === me && s.status === "published") {
        action = h("button.btn.danger", { type: "button", on: { click: () => cancelSlot(s) } }, t("clinic.cancel"));
      }
      return h("tr", { "data-id": s.id }, h("td", `${dateTime(s.start)} – ${dateTime(s.end).slice(-5)}`), h("td", hn), h("td", dn),
        h("td", `${free} / ${s.capacity}`), h("td", t("slot." + s.status)), h("td", action));
    }));
    clear(body).append(...rows);
    empty.hidden = rows.length > 0;
  }
  async function cancelSlot(s) {
    const reason = h("textarea", { rows: 2 });
    const ok = await dialog(t("clinic.cancel"), field(t("saction.reason"), reason, { name: "reason" }), {
      danger: true, submitLabel: t("clinic.cancel"),
      onSubmit: () => post(`/clinic-slots/${s.id}/cancel`, { reason: reason.value }),
    });
    if (ok) { toast(t("clinic.cancelled")); await load(); }
  }
  await load();
}

async function publishForm(hid, done) {
  const depts = await departments(hid).catch(() => []);
  const dept = select([["", t("form.choose")], ...depts.map((d) => [d.id, d.name])], "", { id: "slot-department" });
  // A slot is published by the Monday of the week before its own (posted a
  // week ahead), so the first week still open is the one after next: its
  // Monday, 09:00–11:00, is the form's suggestion.
  const today = new Date(dayISO(new Date()) + "T12:00:00Z");
  const toMonday = (8 - today.getUTCDay()) % 7 || 7;
  const monday = new Date(today.getTime() + (toMonday + 7) * 86400000).toISOString().slice(0, 10);
  const from = h("input#slot-start", { type: "datetime-local", value: monday + "T09:00" });
  const to = h("input#slot-end", { type: "datetime-local", value: monday + "T11:00" });
  const cap = h("input#slot-capacity", { type: "number", min: 1, max: 20, value: 4 });
  const banner = h("p.form-error", { role: "alert", hidden: true });
  const form = h("form.card.slot-form", { novalidate: true }, h("h2", t("clinic.publish")), banner,
    h("div.row", field(t("clinic.department"), dept, { name: "department_id" }), field(t("session.start"), from, { name: "start" }),
      field(t("session.end"), to, { name: "end" }), field(t("clinic.capacity"), cap, { name: "capacity" })),
    h("p.hint", t("clinic.publish_hint")),
    h("button.btn.primary#publish-slot", { type: "submit" }, t("clinic.publish")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await post("/clinic-slots", { department_id: dept.value, start: fromLocalInput(from.value), end: fromLocalInput(to.value), capacity: Number(cap.value) || 1 }, { idempotent: true });
      toast(t("clinic.published"));
      done();
    } catch (err) { if (err instanceof ApiError) showErrors(form, err); else throw err; }
  });
  return form;
}
