// Requesting a remote session (consultation, MDT, teaching round, imaging
// review) and booking a place of a specialist's remote clinic. Both take the
// patient (searched or registered as in the referral form), the patient's
// consents to remote consultation and to sharing the record with the target
// hospital, the question, a summary and files (DICOM included).
import { get, post, qs, upload, ApiError, background } from "../api.js";
import { t } from "../i18n.js";
import { h, clear, field, select, showErrors, clearErrors, toast, announce, dateTime } from "../ui.js";
import { session, go } from "../session.js";
import { hospitalMap, departments, departmentName } from "../names.js";
import { patientForm, consentForm } from "./referral-form.js";

const requestKinds = ["consult", "mdt", "teaching_round", "imaging_review"];

// attachmentKind is the session's kind of file for an uploaded one.
function attachmentKind(type) {
  if (type === "application/dicom") return "dicom";
  if (type === "application/pdf") return "pdf";
  return "image";
}

// patientBlock: search, pick or register the patient, and show or record the
// two consents a remote session needs with the target hospital.
function patientBlock(targetHospital) {
  const hid = session.user.hospital_id;
  const state = { patient: null };
  const q = h("input#patient-q", { type: "search", autocomplete: "off" });
  const results = h("ul.pick-list#patient-results", { "aria-label": t("form.patient_results") });
  const chosen = h("div.chosen#patient-chosen", { "data-field": "patient_id", tabindex: "-1" });
  const consents = h("div.consents#consents", { "data-field": "consent", tabindex: "-1" });
  async function search() {
    if (!q.value.trim()) return;
    const page = await get("/patients" + qs({ q: q.value.trim(), limit: 20 }));
    clear(results);
    if (!page.items.length) results.append(h("li.muted", t("form.no_patient")));
    for (const p of page.items) results.append(h("li", h("button.pick", { type: "button", on: { click: () => choose(p) } }, h("strong", p.name), " ", [t("sex." + p.sex), p.birth_date, p.national_id_masked].filter(Boolean).join(" · "))));
  }
  q.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); background(search()); } });
  async function choose(p) {
    state.patient = p;
    clear(chosen).append(h("p", h("strong", p.name), " ", [t("sex." + p.sex), p.birth_date, p.national_id_masked].filter(Boolean).join(" · ")));
    clear(results);
    await loadConsents();
  }
  async function loadConsents() {
    clear(consents);
    const target = targetHospital();
    if (!state.patient) { consents.append(h("p.muted", t("form.pick_patient_first"))); return; }
    const items = (await get(`/patients/${state.patient.id}/consents`)).items.filter((c) => c.active);
    const hmap = await hospitalMap();
    const needs = [
      { purpose: "remote_consultation", ok: items.some((c) => c.purpose === "remote_consultation"), label: t("consent.remote_consultation") },
      { purpose: "data_sharing", ok: !!target && items.some((c) => c.purpose === "data_sharing" && c.shared_with_hospital_id === target),
        label: t("consent.data_sharing", { hospital: target && hmap.has(target) ? hmap.get(target).name : "—" }) },
    ];
    for (const n of needs) {
      consents.append(h("p.consent-state", { "data-purpose": n.purpose }, h("span.badge" + (n.ok ? ".status-accepted" : ".status-info_requested"), n.ok ? t("consent.present") : t("consent.missing")), " ", n.label));
      if (!n.ok && (n.purpose !== "data_sharing" || target)) {
        consents.append(consentForm(state.patient, true, async () => { await loadConsents(); announce(t("form.consent_recorded")); },
          { purpose: n.purpose, sharedWith: n.purpose === "data_sharing" ? target : "", id: "record-" + n.purpose, summary: t("consent.new_for", { what: n.label }) }));
      }
    }
  }
  const el = h("fieldset.card.patient-block", h("legend", t("form.section.patient")),
    h("div.row", field(t("form.search_name"), q, { hint: t("form.search_name_hint") }),
      h("button.btn.align-end", { type: "button", on: { click: () => background(search()) } }, t("form.search"))),
    results, chosen, patientForm(hid, (p) => background(choose(p))),
    h("h3", t("form.section.consent")), consents);
  return { el, state, loadConsents };
}

// filesBlock uploads files and keeps them as session attachments.
function filesBlock(patientID) {
  const files = [];
  const input = h("input#files.file-input", { type: "file", multiple: true, accept: ".pdf,.jpg,.jpeg,.png,.dcm,application/pdf,image/jpeg,image/png,application/dicom" });
  input.dataset.field = "attachments";
  const list = h("ul.files#file-list");
  function draw() {
    clear(list);
    files.forEach((a, i) => list.append(h("li", `${a.name} (${t("akind." + a.kind)}, ${Math.ceil(a.size / 1024)} KiB) `,
      h("button.btn-link", { type: "button", on: { click: () => { files.splice(i, 1); draw(); } } }, t("form.remove")))));
  }
  input.addEventListener("change", async () => {
    for (const f of input.files) {
      try {
        // A .dcm file often comes without a type from the file picker.
        const typed = !f.type && /\.dcm$/i.test(f.name) ? new File([f], f.name, { type: "application/dicom" }) : f;
        const a = await upload(typed, patientID());
        files.push({ id: a.id, kind: attachmentKind(a.content_type), name: a.name, content_type: a.content_type, size: a.size });
        announce(t("form.uploaded", { name: a.name }));
      } catch (err) { toast(t("form.upload_failed", { name: f.name }) + ": " + (err.message || err), "error"); }
    }
    input.value = "";
    draw();
  });
  const el = h("fieldset.card", h("legend", t("form.section.attachments")),
    h("div.field.wide", { "data-for": "attachments" }, h("span.label", t("form.files")),
      h("div.file-pick", input, h("label.btn", { for: "files" }, t("form.choose_files"))), h("p.hint", t("session.files_hint")), h("p.field-error")), list);
  return { el, files };
}

// render is the request form (#/sessions/new?kind=…).
export async function render(main, { params }) {
  const hid = session.user.hospital_id;
  const pairings = (await get("/pairings" + qs({ hospital_id: hid, status: "active", limit: 200 }))).items;
  const hmap = await hospitalMap();
  const partners = [...new Set(pairings.map((p) => (p.supporting_hospital_id === hid ? p.recipient_hospital_id : p.supporting_hospital_id)))];
  const name = (id) => (hmap.has(id) ? hmap.get(id).name : id);

  const kind = select(requestKinds.map((k) => [k, t("kind." + k)]), requestKinds.includes(params.get("kind")) ? params.get("kind") : "consult", { id: "session-kind" });
  const urgency = select(["routine", "urgent", "emergency"].map((u) => [u, t("priority." + u)]), "routine", { id: "session-urgency" });
  // A county hospital asks its supporting hospital first.
  const up = partners.filter((p) => hmap.has(p) && hmap.get(p).tier === "tertiary");
  const target = select([["", t("form.choose")], ...partners.map((p) => [p, name(p)])], up.length === 1 ? up[0] : (partners.length === 1 ? partners[0] : ""), { id: "session-target" });
  const deptBox = h("div.checks#session-departments", { "data-field": "target_department_ids", tabindex: "-1" });
  async function loadDepts() {
    clear(deptBox);
    if (!target.value) return;
    for (const dep of await departments(target.value)) {
      deptBox.append(h("label.check", h("input", { type: "checkbox", value: dep.id, name: "target-dept" }), " ", dep.name));
    }
  }
  const ownDepts = await departments(hid).catch(() => []);
  const reqDept = select([["", t("form.choose")], ...ownDepts.map((x) => [x.id, x.name])], ownDepts.length === 1 ? ownDepts[0].id : "", { id: "session-own-department" });
  const attendees = h("div.checks#session-attendees", { "data-field": "attendee_hospital_ids", tabindex: "-1" });
  const attendeeField = h("div.field.wide", h("span.label", t("session.attendees")), attendees, h("p.field-error"));
  function drawAttendees() {
    clear(attendees);
    for (const p of partners.filter((x) => x !== target.value)) attendees.append(h("label.check", h("input", { type: "checkbox", value: p, name: "attendee" }), " ", name(p)));
  }
  const question = h("textarea#session-question", { rows: 3 });
  const summary = h("textarea#session-summary", { rows: 4 });
  const pb = patientBlock(() => target.value);
  const fb = filesBlock(() => (pb.state.patient ? pb.state.patient.id : ""));
  target.addEventListener("change", () => { background(loadDepts()); drawAttendees(); background(pb.loadConsents()); });
  function kindChanged() {
    const teaching = kind.value === "teaching_round";
    pb.el.hidden = teaching;
    attendeeField.hidden = !teaching;
    if (teaching) urgency.value = "routine";
    urgency.disabled = teaching;
  }
  kind.addEventListener("change", kindChanged);

  const banner = h("p.form-error", { role: "alert", hidden: true });
  const submit = h("button.btn.primary#submit-session", { type: "button" }, t("session.submit"));
  const form = h("form.session-form", { novalidate: true }, banner,
    h("fieldset.card", h("legend", t("session.section.what")),
      h("div.row", field(t("session.kind"), kind, { name: "kind" }), field(t("col.priority"), urgency, { name: "urgency" }),
        field(t("form.referring_department"), reqDept, { name: "requesting_department_id" })),
      h("div.row", field(t("session.target"), target, { name: "target_hospital_id" })),
      h("div.field.wide", h("span.label", t("session.target_departments")), deptBox, h("p.hint", t("session.departments_hint")), h("p.field-error")),
      attendeeField),
    pb.el,
    h("fieldset.card", h("legend", t("form.section.clinical")),
      field(t("session.question"), question, { name: "question", wide: true }),
      field(t("form.summary"), summary, { name: "clinical_summary", wide: true })),
    fb.el,
    h("div.form-actions", submit));
  form.addEventListener("submit", (e) => e.preventDefault());
  submit.addEventListener("click", async () => {
    clearErrors(form);
    submit.disabled = true;
    const teaching = kind.value === "teaching_round";
    try {
      const s = await post("/sessions", {
        kind: kind.value, urgency: urgency.value, requesting_department_id: reqDept.value,
        target_hospital_id: target.value, target_department_ids: [...deptBox.querySelectorAll("input:checked")].map((x) => x.value),
        requested_specialist_ids: [], question: question.value, clinical_summary: summary.value,
        attachments: fb.files, patient_id: teaching || !pb.state.patient ? "" : pb.state.patient.id,
        attendee_hospital_ids: teaching ? [...attendees.querySelectorAll("input:checked")].map((x) => x.value) : [],
      }, { idempotent: true });
      toast(t("session.requested"));
      go(`#/sessions/${s.id}`);
    } catch (err) {
      if (err instanceof ApiError) showErrors(form, err); else { banner.textContent = t("error.network"); banner.hidden = false; }
    } finally { submit.disabled = false; }
  });
  main.append(h("div.page-head", h("h1", t("session.new_title"))), form);
  await loadDepts();
  drawAttendees();
  kindChanged();
  await pb.loadConsents();
}

// renderBooking books a place of a published remote-clinic slot
// (#/clinic/{slotID}/book).
export async function renderBooking(main, { args }) {
  const slotID = args[0];
  const hid = session.user.hospital_id;
  const slots = (await get("/clinic-slots" + qs({ limit: 200 }))).items;
  const slot = slots.find((s) => s.id === slotID);
  if (!slot) { main.append(h("section.card", h("h1", t("clinic.slot_gone")), h("p", h("a", { href: "#/clinic" }, t("clinic.back"))))); return; }
  const hmap = await hospitalMap();
  const dname = await departmentName(slot.hospital_id, slot.department_id);
  const ownDepts = await departments(hid).catch(() => []);
  const reqDept = select([["", t("form.choose")], ...ownDepts.map((x) => [x.id, x.name])], ownDepts.length === 1 ? ownDepts[0].id : "", { id: "booking-department" });
  const question = h("textarea#booking-question", { rows: 3 });
  const summary = h("textarea#booking-summary", { rows: 4 });
  const pb = patientBlock(() => slot.hospital_id);
  const fb = filesBlock(() => (pb.state.patient ? pb.state.patient.id : ""));
  const banner = h("p.form-error", { role: "alert", hidden: true });
  const submit = h("button.btn.primary#book-slot", { type: "button" }, t("clinic.book"));
  const form = h("form.session-form", { novalidate: true }, banner,
    h("section.card", h("dl.facts",
      h("dt", t("clinic.when")), h("dd", `${dateTime(slot.start)} – ${dateTime(slot.end).slice(-5)}`),
      h("dt", t("session.target")), h("dd", `${hmap.has(slot.hospital_id) ? hmap.get(slot.hospital_id).name : ""} · ${dname}`),
      h("dt", t("clinic.places")), h("dd", `${slot.capacity - slot.booked} / ${slot.capacity}`))),
    pb.el,
    h("fieldset.card", h("legend", t("form.section.clinical")),
      field(t("form.referring_department"), reqDept, { name: "requesting_department_id" }),
      field(t("session.question"), question, { name: "question", wide: true }),
      field(t("form.summary"), summary, { name: "clinical_summary", wide: true })),
    fb.el, h("div.form-actions", submit));
  form.addEventListener("submit", (e) => e.preventDefault());
  submit.addEventListener("click", async () => {
    clearErrors(form);
    submit.disabled = true;
    try {
      const s = await post(`/clinic-slots/${slotID}/book`, {
        patient_id: pb.state.patient ? pb.state.patient.id : "", requesting_department_id: reqDept.value,
        question: question.value, clinical_summary: summary.value, attachments: fb.files,
      }, { idempotent: true });
      toast(t("clinic.booked"));
      go(`#/sessions/${s.id}`);
    } catch (err) {
      if (err instanceof ApiError) showErrors(form, err); else { banner.textContent = t("error.network"); banner.hidden = false; }
    } finally { submit.disabled = false; }
  });
  main.append(h("div.page-head", h("h1", t("clinic.book_title"))), form);
  await pb.loadConsents();
}
