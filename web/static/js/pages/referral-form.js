// Writing a referral: up (a county doctor to the paired tertiary hospital)
// or down (back home, from the ticket it follows). Patient search or
// registration, consent, destination, ICD-10 coded diagnoses, the green
// channel, transport, attachments; saved as a draft, then submitted. A
// failed submission keeps the draft, and field errors stand beside the
// fields the server named.
import { get, post, put, request, qs, upload, ApiError, background } from "../api.js";
import { t } from "../i18n.js";
import { h, clear, field, select, showErrors, clearErrors, toast, announce, fromLocalInput, toLocalInput, dateTime } from "../ui.js";
import { session, go } from "../session.js";
import { hospitalMap, departments } from "../names.js";

const greenCategories = ["chest_pain", "stroke", "trauma", "maternal", "neonatal", "other_critical"];

export async function render(main, { params }) {
  // Editing: a draft, or a ticket the receiving desk asked about.
  const editing = params.get("edit") ? await get(`/referrals/${params.get("edit")}`) : null;
  const down = editing ? editing.direction === "down" : params.get("direction") === "down";
  const basedOn = editing ? editing.based_on_id || "" : params.get("based_on") || "";
  // A ticket the desk asked about is rewritten here and sent back from its page.
  const answering = editing && editing.status === "info_requested";
  const hid = session.user.hospital_id;
  const state = { patient: null, consentID: "", draft: null, attachments: [], diagnoses: [] };

  // A down-referral written from a ticket starts from that ticket.
  let base = null;
  if (basedOn && !editing) base = await get(`/referrals/${basedOn}`);

  // ---- patient ----
  const q = h("input#patient-q", { type: "search", autocomplete: "off" });
  const idq = h("input#patient-idq", { autocomplete: "off", inputmode: "text", maxlength: 18 });
  const results = h("ul.pick-list#patient-results", { "aria-label": t("form.patient_results") });
  const chosen = h("div.chosen#patient-chosen", { "data-field": "patient_id", tabindex: "-1" });
  const newPatient = patientForm(hid, (p) => choosePatient(p));
  async function searchByName() {
    if (!q.value.trim()) return;
    const page = await get("/patients" + qs({ q: q.value.trim(), limit: 20 }));
    showResults(page.items);
  }
  async function searchByID() {
    if (!idq.value.trim()) return;
    try {
      const page = await post("/patients/search", { national_id: idq.value.trim() });
      showResults(page.items);
    } catch (err) { if (err instanceof ApiError) toast(Object.values(err.fields)[0] || err.message, "error"); }
  }
  function showResults(items) {
    clear(results);
    if (!items.length) { results.append(h("li.muted", t("form.no_patient"))); return; }
    for (const p of items) {
      results.append(h("li", h("button.pick", { type: "button", on: { click: () => choosePatient(p) } },
        h("strong", p.name), " ", [t("sex." + p.sex), p.birth_date, p.national_id_masked].filter(Boolean).join(" · "))));
    }
  }
  q.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); searchByName(); } });
  idq.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); searchByID(); } });

  // ---- consent ----
  const consentBox = h("div.consents#consents", { "data-field": "consent_id", tabindex: "-1" });
  async function loadConsents() {
    clear(consentBox);
    if (!state.patient) { consentBox.append(h("p.muted", t("form.pick_patient_first"))); return; }
    const page = await get(`/patients/${state.patient.id}/consents`);
    const usable = page.items.filter((c) => c.active && c.purpose === "referral");
    if (usable.length && !usable.some((c) => c.id === state.consentID)) state.consentID = usable[0].id;
    for (const c of usable) {
      const radio = h("input", { type: "radio", name: "consent", value: c.id, checked: c.id === state.consentID, on: { change: () => { state.consentID = c.id; } } });
      consentBox.append(h("label.radio", radio, ` ${t("consent.by." + c.consenter_kind)} ${c.consenter_name}${c.relationship ? " (" + c.relationship + ")" : ""} · ${dateTime(c.granted_at)}`));
    }
    if (!usable.length) consentBox.append(h("p.muted", t("form.no_consent")));
    consentBox.append(consentForm(state.patient, !usable.length, async (c) => { state.consentID = c.id; await loadConsents(); announce(t("form.consent_recorded")); }));
  }
  async function choosePatient(p) {
    state.patient = p;
    clear(chosen).append(h("p", h("strong", p.name), " ", [t("sex." + p.sex), p.birth_date, p.national_id_masked].filter(Boolean).join(" · "),
      " ", h("button.btn-link", { type: "button", on: { click: () => { state.patient = null; state.consentID = ""; clear(chosen); background(loadConsents()); q.focus(); } } }, t("form.change"))));
    clear(results);
    await loadConsents();
  }

  // ---- destination ----
  const pairings = (await get("/pairings" + qs({ hospital_id: hid, status: "active", limit: 200 }))).items;
  const hmap = await hospitalMap();
  const partners = [...new Set(pairings.map((p) => (down
    ? (p.supporting_hospital_id === hid ? p.recipient_hospital_id : "")
    : (p.recipient_hospital_id === hid ? p.supporting_hospital_id : ""))).filter(Boolean))];
  const recvHospital = select([["", t("form.choose")], ...partners.map((id) => [id, hmap.has(id) ? hmap.get(id).name : id])],
    base ? base.referring_hospital_id : (partners.length === 1 ? partners[0] : ""), { id: "receiving-hospital" });
  const recvDept = h("select#receiving-department");
  async function loadRecvDepts() {
    clear(recvDept).append(h("option", { value: "" }, t("form.choose")));
    if (!recvHospital.value) return;
    for (const d of await departments(recvHospital.value)) recvDept.append(h("option", { value: d.id, selected: base && d.id === base.referring_department_id }, d.name));
  }
  recvHospital.addEventListener("change", loadRecvDepts);
  const ownDepts = await departments(hid);
  const refDept = select([["", t("form.choose")], ...ownDepts.map((d) => [d.id, d.name])],
    base ? base.receiving_department_id : (ownDepts.length === 1 ? ownDepts[0].id : ""), { id: "referring-department" });

  // ---- clinical ----
  const priority = select([["", t("form.choose")], ...["emergency", "urgent", "routine"].map((p) => [p, t("priority." + p)])], down ? "routine" : "", { id: "priority" });
  const green = h("input#green", { type: "checkbox" });
  const greenCat = select([["", t("form.choose")], ...greenCategories.map((c) => [c, t("green." + c)])], "", { id: "green-category" });
  const greenBox = h("div.green-box", { hidden: true }, field(t("form.green_category"), greenCat, { name: "green_category" }));
  green.addEventListener("change", () => {
    greenBox.hidden = !green.checked;
    if (green.checked && priority.value === "routine") priority.value = "urgent";
    if (green.checked && !priority.value) priority.value = "emergency";
  });
  const risk = select([["", t("form.choose")], ["1", t("risk.1")], ["2", t("risk.2")], ["3", t("risk.3")]], down ? "3" : "", { id: "transfer-risk" });
  const reason = h("textarea#reason", { rows: 2 });
  const summary = h("textarea#summary", { rows: 4 });
  const treatment = h("textarea#treatment", { rows: 2 });
  const mode = select([["", t("form.choose")], ...["ambulance", "hospital_vehicle", "self", "other"].map((m) => [m, t("transport." + m)])], "", { id: "transport-mode" });
  const escort = select([["", t("form.choose")], ...["doctor", "nurse", "family", "none"].map((m) => [m, t("escort." + m)])], "", { id: "transport-escort" });
  risk.addEventListener("change", () => { if (risk.value === "1") { mode.value = "ambulance"; escort.value = "doctor"; } });
  const winFrom = h("input#window-from", { type: "datetime-local" });
  const winTo = h("input#window-to", { type: "datetime-local" });
  if (base) {
    state.diagnoses = (base.diagnoses || []).map((d) => ({ ...d }));
    summary.value = base.outcome ? t("form.down_summary_from", { number: base.number }) : "";
  }

  // ---- diagnoses: ICD-10 search ----
  const dxList = h("ol.dx-list#diagnoses", { "data-field": "diagnoses", tabindex: "-1" });
  const dxSearch = icdPicker((c) => {
    if (state.diagnoses.some((d) => d.code === c.code)) return;
    state.diagnoses.push({ code: c.code, text: c.name });
    drawDx();
    announce(t("form.dx_added", { code: c.code }));
  });
  function drawDx() {
    clear(dxList);
    state.diagnoses.forEach((d, i) => {
      const text = h("input", { value: d.text, "aria-label": t("form.dx_text", { code: d.code }), "data-field": `diagnoses[${i}].text`, on: { input: (e) => { d.text = e.target.value; } } });
      dxList.append(h("li.dx", { "data-field": `diagnoses[${i}]` }, h("span.code", { "data-field": `diagnoses[${i}].code` }, d.code), text,
        h("span.dx-role.muted", i === 0 ? t("form.dx_principal") : ""),
        h("button.btn-icon", { type: "button", "aria-label": t("form.dx_remove", { code: d.code }), on: { click: () => { state.diagnoses.splice(i, 1); drawDx(); } } }, "×")));
    });
    if (!state.diagnoses.length) dxList.append(h("li.muted", t("form.dx_none")));
  }
  drawDx();

  // ---- attachments ----
  const fileInput = h("input#files.file-input", { type: "file", multiple: true, accept: ".pdf,.jpg,.jpeg,.png,.dcm,application/pdf,image/jpeg,image/png,application/dicom" });
  const fileList = h("ul.files#file-list");
  fileInput.dataset.field = "attachments";
  function drawFiles() {
    clear(fileList);
    state.attachments.forEach((a, i) => fileList.append(h("li", `${a.name} (${Math.ceil(a.size / 1024)} KiB) `,
      h("button.btn-link", { type: "button", on: { click: () => { state.attachments.splice(i, 1); drawFiles(); } } }, t("form.remove")))));
  }
  fileInput.addEventListener("change", async () => {
    for (const f of fileInput.files) {
      const li = h("li.muted", t("form.uploading", { name: f.name }));
      fileList.append(li);
      try {
        const a = await upload(f, state.patient ? state.patient.id : "");
        state.attachments.push({ id: a.id, name: a.name, content_type: a.content_type, size: a.size });
        announce(t("form.uploaded", { name: a.name }));
      } catch (err) {
        toast(t("form.upload_failed", { name: f.name }) + ": " + (err.message || err), "error");
      }
      li.remove();
    }
    fileInput.value = "";
    drawFiles();
  });

  // ---- the form ----
  const banner = h("p.form-error", { role: "alert", hidden: true });
  // No submit button: Enter in one of the many fields (the ICD search, the
  // patient search) must never send a referral; the buttons are clicked.
  const submitBtn = h("button.btn.primary#submit-referral", { type: "button" }, t("form.submit"));
  const draftBtn = h("button.btn#save-draft", { type: "button" }, t("form.save_draft"));
  const form = h("form.referral-form", { novalidate: true },
    banner,
    h("fieldset.card", h("legend", t("form.section.patient")),
      h("div.row",
        field(t("form.search_name"), q, { hint: t("form.search_name_hint") }),
        h("button.btn.align-end", { type: "button", on: { click: searchByName } }, t("form.search")),
        field(t("form.search_id"), idq, { hint: t("form.search_id_hint") }),
        h("button.btn.align-end", { type: "button", on: { click: searchByID } }, t("form.search"))),
      results, chosen, newPatient),
    h("fieldset.card", h("legend", t("form.section.consent")), consentBox),
    h("fieldset.card", h("legend", t("form.section.destination")),
      h("div.row",
        field(t("form.receiving_hospital"), recvHospital, { name: "receiving_hospital_id" }),
        field(t("form.receiving_department"), recvDept, { name: "receiving_department_id" }),
        field(t("form.referring_department"), refDept, { name: "referring_department_id" }))),
    h("fieldset.card", h("legend", t("form.section.clinical")),
      down ? null : h("div.green-toggle", h("label.check", { for: "green" }, green, " ", h("strong", t("form.green")), " ", h("span.muted", t("form.green_hint"))), greenBox),
      h("div.row",
        field(t("form.priority"), priority, { name: "priority" }),
        field(t("form.transfer_risk"), risk, { name: "transfer_risk", hint: t("form.transfer_risk_hint") })),
      h("div.field.wide", h("label", { for: dxSearch.input.id }, t("form.diagnoses")), dxSearch.el, dxList, h("p.field-error")),
      field(t("form.reason"), reason, { name: "reason", wide: true }),
      field(t("form.summary"), summary, { name: "clinical_summary", wide: true }),
      field(t("form.treatment"), treatment, { name: "treatment_given", wide: true })),
    h("fieldset.card", h("legend", t("form.section.transport")),
      h("div.row",
        field(t("form.transport_mode"), mode, { name: "transport.mode" }),
        field(t("form.transport_escort"), escort, { name: "transport.escort" }),
        field(t("form.window_from"), winFrom, { name: "requested_window" }),
        field(t("form.window_to"), winTo, { name: "requested_window.to" }))),
    h("fieldset.card", h("legend", t("form.section.attachments")),
      h("div.field.wide", { "data-for": "attachments" },
        h("span.label", t("form.files")),
        h("div.file-pick", fileInput, h("label.btn", { for: "files" }, t("form.choose_files"))),
        h("p.hint", t("form.files_hint")), h("p.field-error")),
      fileList),
    h("div.form-actions", draftBtn, submitBtn));

  function input() {
    const body = {
      direction: down ? "down" : "up",
      priority: priority.value,
      green_channel: !down && green.checked,
      green_category: !down && green.checked ? greenCat.value : "",
      transfer_risk: Number(risk.value) || 0,
      patient_id: state.patient ? state.patient.id : "",
      referring_department_id: refDept.value,
      referring_doctor_id: session.user.id,
      receiving_hospital_id: recvHospital.value,
      receiving_department_id: recvDept.value,
      diagnoses: state.diagnoses,
      reason: reason.value,
      clinical_summary: summary.value,
      treatment_given: treatment.value,
      transport: { mode: mode.value, escort: escort.value },
      attachments: state.attachments,
      consent_id: state.consentID,
    };
    if (basedOn) body.based_on_id = basedOn;
    if (winFrom.value || winTo.value) body.requested_window = { from: fromLocalInput(winFrom.value), to: fromLocalInput(winTo.value) };
    return body;
  }
  // fill puts a saved ticket back into the form.
  async function fill(r) {
    state.draft = r;
    state.consentID = r.consent_id || "";
    state.diagnoses = (r.diagnoses || []).map((d) => ({ ...d }));
    state.attachments = (r.attachments || []).map((a) => ({ ...a }));
    recvHospital.value = r.receiving_hospital_id || "";
    await loadRecvDepts();
    recvDept.value = r.receiving_department_id || "";
    refDept.value = r.referring_department_id || "";
    priority.value = r.priority || "";
    green.checked = !!r.green_channel;
    greenBox.hidden = !green.checked;
    greenCat.value = r.green_category || "";
    risk.value = r.transfer_risk ? String(r.transfer_risk) : "";
    reason.value = r.reason || "";
    summary.value = r.clinical_summary || "";
    treatment.value = r.treatment_given || "";
    mode.value = (r.transport && r.transport.mode) || "";
    escort.value = (r.transport && r.transport.escort) || "";
    if (r.requested_window) { winFrom.value = toLocalInput(new Date(r.requested_window.from)); winTo.value = toLocalInput(new Date(r.requested_window.to)); }
    drawDx();
    drawFiles();
    await choosePatient(await get(`/patients/${r.patient_id}`));
  }

  // save writes the draft (created once, rewritten after).
  async function save() {
    if (!state.draft) state.draft = await post("/referrals", input(), { idempotent: true });
    else state.draft = await put(`/referrals/${state.draft.id}`, input(), { ifMatch: state.draft.version });
    return state.draft;
  }
  async function run(submitting) {
    clearErrors(form);
    submitBtn.disabled = draftBtn.disabled = true;
    try {
      if (!state.patient) throw new ApiError(422, { errors: [{ field: "patient_id", message: t("form.pick_patient_first") }] });
      const d = await save();
      if (!submitting) { toast(t("form.draft_saved")); announce(t("form.draft_saved")); return; }
      if (answering) { toast(t("form.changes_saved")); go(`#/referrals/${d.id}`); return; }
      const sent = (await request("POST", `/referrals/${d.id}/actions/submit`, { body: {}, ifMatch: d.version })).body;
      toast(t("form.submitted", { number: sent.number }));
      go(`#/referrals/${sent.id}`);
    } catch (err) {
      if (err instanceof ApiError) {
        if (err.status === 412 && state.draft) state.draft = await get(`/referrals/${state.draft.id}`);
        showErrors(form, err);
      } else { banner.textContent = t("error.network"); banner.hidden = false; }
    } finally { submitBtn.disabled = draftBtn.disabled = false; }
  }
  form.addEventListener("submit", (e) => e.preventDefault());
  submitBtn.addEventListener("click", () => run(true));
  draftBtn.addEventListener("click", () => run(false));

  main.append(h("div.page-head", h("h1", editing ? t("form.title_edit", { number: editing.number || t("ticket.draft_number") }) : down ? t("form.title_down") : t("form.title_up")),
    base ? h("p.muted", t("form.based_on", { number: base.number })) : null,
    answering ? h("p.hint", t("ticket.info_question"), " ", editing.info_question) : null), form);
  if (answering) { draftBtn.hidden = true; submitBtn.textContent = t("form.save_changes"); }
  if (editing) await fill(editing);
  else {
    await loadRecvDepts();
    if (base) await choosePatient(await get(`/patients/${base.patient_id}`));
    else await loadConsents();
  }
  q.focus();
}

// patientForm registers a new patient at the caller's hospital.
export function patientForm(hid, done) {
  const name = h("input", { autocomplete: "off" });
  const sex = select([["", t("form.choose")], ["male", t("sex.male")], ["female", t("sex.female")], ["unknown", t("sex.unknown")]], "");
  const birth = h("input", { type: "date" });
  const nid = h("input", { autocomplete: "off", maxlength: 18 });
  const phone = h("input", { type: "tel", autocomplete: "off" });
  const address = h("input", { autocomplete: "off" });
  const banner = h("p.form-error", { role: "alert", hidden: true });
  const box = h("div.sub-form", banner,
    h("div.row", field(t("patient.name"), name, { name: "name" }), field(t("patient.sex"), sex, { name: "sex" }), field(t("patient.birth_date"), birth, { name: "birth_date" })),
    h("div.row", field(t("patient.national_id"), nid, { name: "national_id" }), field(t("patient.phone"), phone, { name: "phone" }), field(t("patient.address"), address, { name: "address" })),
    h("button.btn", { type: "button", on: { click: create } }, t("patient.register")));
  async function create() {
    clearErrors(box);
    try {
      const p = await post("/patients", { name: name.value, sex: sex.value, birth_date: birth.value, national_id: nid.value, phone: phone.value, address: address.value, home_hospital_id: hid }, { idempotent: true });
      details.open = false;
      announce(t("patient.registered", { name: p.name }));
      done(p);
    } catch (err) { if (err instanceof ApiError) showErrors(box, err); else throw err; }
  }
  const details = h("details.register", h("summary", t("patient.new")), box);
  return details;
}

// consentForm records the patient's (or a relative's) consent to referral,
// or to another purpose (remote_consultation; data_sharing with a hospital)
// when the remote-session pages ask.
export function consentForm(p, open, done, { purpose = "referral", sharedWith = "", id = "record-consent", summary = t("consent.new") } = {}) {
  const kind = select([["patient", t("consent.by.patient")], ["guardian", t("consent.by.guardian")], ["relative", t("consent.by.relative")]], "patient");
  const name = h("input", { id: id === "record-consent" ? "consenter-name" : id + "-name", value: p.name, autocomplete: "off" });
  const rel = h("input", { autocomplete: "off" });
  const note = h("input", { autocomplete: "off" });
  const banner = h("p.form-error", { role: "alert", hidden: true });
  kind.addEventListener("change", () => { if (kind.value === "patient") name.value = p.name; else if (name.value === p.name) name.value = ""; });
  const box = h("div.sub-form", banner,
    h("p.hint", t("consent.statement")),
    h("div.row", field(t("consent.kind"), kind, { name: "consenter_kind" }), field(t("consent.name"), name, { name: "consenter_name" }),
      field(t("consent.relationship"), rel, { name: "relationship" }), field(t("consent.note"), note, { name: "note" })),
    h("button.btn", { id, type: "button", on: { click: record } }, t("consent.record")));
  async function record() {
    clearErrors(box);
    try {
      const c = await post(`/patients/${p.id}/consents`, { consenter_kind: kind.value, consenter_name: name.value, relationship: rel.value, note: note.value, purpose, shared_with_hospital_id: sharedWith }, { idempotent: true });
      done(c);
    } catch (err) { if (err instanceof ApiError) showErrors(box, err); else throw err; }
  }
  return h("details.register", { open }, h("summary", summary), box);
}

// icdPicker is a combobox over GET /icd10: type a code or a Chinese name,
// arrows move, Enter picks.
function icdPicker(onPick) {
  const input = h("input#icd-q", { type: "search", role: "combobox", autocomplete: "off", "aria-autocomplete": "list", "aria-expanded": "false", "aria-controls": "icd-list", placeholder: t("form.dx_placeholder") });
  const list = h("ul.combo-list#icd-list", { role: "listbox", hidden: true });
  let items = [];
  let active = -1;
  let timer = null;
  let seq = 0;
  function draw() {
    clear(list);
    items.forEach((c, i) => {
      const li = h("li", { role: "option", id: `icd-opt-${i}`, "aria-selected": i === active ? "true" : "false", "data-code": c.code,
        on: { mousedown: (e) => { e.preventDefault(); pick(i); } } }, h("span.code", c.code), " ", c.name);
      list.append(li);
    });
    list.hidden = items.length === 0;
    input.setAttribute("aria-expanded", String(!list.hidden));
    if (active >= 0) input.setAttribute("aria-activedescendant", `icd-opt-${active}`); else input.removeAttribute("aria-activedescendant");
  }
  function pick(i) {
    const c = items[i];
    if (!c) return;
    onPick(c);
    input.value = "";
    items = []; active = -1; draw();
    input.focus();
  }
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++seq;
      const qv = input.value.trim();
      const res = qv ? (await get("/icd10" + qs({ q: qv, limit: 12 }))).items : [];
      if (mine !== seq) return;
      items = res; active = res.length ? 0 : -1; draw();
    }, 150);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" && items.length) { e.preventDefault(); active = (active + 1) % items.length; draw(); }
    else if (e.key === "ArrowUp" && items.length) { e.preventDefault(); active = (active - 1 + items.length) % items.length; draw(); }
    else if (e.key === "Enter") { e.preventDefault(); if (active >= 0) pick(active); }
    else if (e.key === "Escape") { items = []; active = -1; draw(); }
  });
  input.addEventListener("blur", () => setTimeout(() => { items = []; active = -1; draw(); }, 150));
  return { input, el: h("div.combo", input, list) };
}
