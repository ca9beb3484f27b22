// One remote session: its facts, the actions the caller may take in its
// state (the domain's table in consult/state.go decides; a refused action
// shows the server's reason), the opinion (written and signed by the
// assigned specialist, then read-only, amended by signed addenda), the
// history and the escalations. A change pushed on /sessions/stream re-reads it.
import { get, put, post, request, ApiError, background } from "../api.js";
import { t } from "../i18n.js";
import { h, clear, field, dateTime, dialog, toast, announce, showErrors, clearErrors, toLocalInput, fromLocalInput } from "../ui.js";
import { live } from "../sse.js";
import { session, has, go } from "../session.js";
import { hospitalName, patient, departments, departmentName } from "../names.js";
import { setLiveState } from "../referral-view.js";
import { sessionBadge, urgencyBadge, scheduleText, countdown, startTicking } from "./sessions.js";

const opinionStates = ["accepted", "scheduled", "live", "ended"];
const requesterRoles = ["county_doctor", "specialist", "dispatched_doctor"];

export async function render(main, { args }) {
  const id = args[0];
  const hid = session.user.hospital_id;
  const me = session.user.id;
  let d = null; // the session as last read (with addenda)
  const breached = new Set();
  let shown = ""; // what the page shows: version, addenda, escalations
  const box = h("div.session-view");
  main.append(box);

  async function load() {
    const [s, evs, esc] = await Promise.all([get(`/sessions/${id}`), get(`/sessions/${id}/events`), get(`/sessions/${id}/escalations`)]);
    d = s;
    if (esc.items.length) breached.add(id);
    // A re-read that finds nothing new keeps the page (and a draft being typed).
    const sig = [s.version, (s.addenda || []).length, esc.items.length, breached.size].join(":");
    if (sig === shown) return;
    shown = sig;
    await draw(evs.items, esc.items);
  }

  async function draw(events, escalations) {
    const requester = d.requesting_hospital_id === hid;
    const target = d.target_hospital_id === hid;
    const specialist = has("specialist");
    const assigned = (d.specialists || []).some((a) => a.specialist_id === me);
    const [pt, reqName, tgtName, tgtDepts, ownDepts] = await Promise.all([
      d.patient_id ? patient(d.patient_id).catch(() => null) : null,
      hospitalName(d.requesting_hospital_id).catch(() => ""), hospitalName(d.target_hospital_id).catch(() => ""),
      departments(d.target_hospital_id).catch(() => []), d.requesting_department_id ? departmentName(d.requesting_hospital_id, d.requesting_department_id) : "",
    ]);
    const deptName = (x) => (tgtDepts.find((y) => y.id === x) || {}).name || x;
    const who = (u) => (u === me ? session.user.display_name : u === d.requester_id ? t("session.requester") : t("role.specialist"));

    // ---- actions ----
    const acts = [];
    const btn = (action, label, fn, cls = "") => acts.push(h("button.btn" + cls, { type: "button", "data-action": action, on: { click: fn } }, label));
    if (target && specialist) {
      if (d.status === "requested") { btn("accept", t("saction.accept"), accept, ".primary"); btn("decline", t("saction.decline"), decline, ".danger"); }
      if (["accepted", "scheduled"].includes(d.status) && d.kind !== "expert_clinic") btn("schedule", t("saction.schedule"), schedule);
      if (d.status === "scheduled" && assigned) btn("start", t("saction.start"), () => act("start", {}), ".primary");
      if (d.status === "live" && assigned) btn("end", t("saction.end"), () => act("end", {}));
    }
    if (requester && has(...requesterRoles)) {
      if (d.status === "opinion_signed") btn("acknowledge", t("saction.acknowledge"), () => act("acknowledge", {}), ".primary");
      if (["requested", "accepted", "scheduled"].includes(d.status)) btn("cancel", t("saction.cancel"), cancel, ".danger");
    }
    if (["scheduled", "live"].includes(d.status)) acts.push(h("a.btn.primary#join-room", { href: `#/sessions/${id}/room` }, t("saction.join")));

    // ---- facts ----
    const facts = h("dl.facts",
      fact(t("session.kind"), t("kind." + d.kind)),
      fact(t("col.priority"), urgencyBadge(d.urgency)),
      pt ? fact(t("col.patient"), [pt.name, t("sex." + pt.sex), pt.birth_date].filter(Boolean).join(" · ")) : null,
      fact(t("session.requesting"), [reqName, ownDepts].filter(Boolean).join(" · ")),
      fact(t("session.target"), [tgtName, (d.target_department_ids || []).map(deptName).join(t("list.sep"))].filter(Boolean).join(" · ")),
      d.status === "requested" && d.respond_by ? fact(t("scol.deadline"), countdown(d, breached.has(id))) : null,
      d.schedule ? fact(t("session.schedule"), scheduleText(d)) : null,
      (d.specialists || []).length ? fact(t("session.specialists"), d.specialists.map((a) => t("session.specialist_in", { who: who(a.specialist_id), dept: deptName(a.department_id) })).join(t("list.sep"))) : null,
      d.decline_reason ? fact(t("session.decline_reason"), d.decline_reason) : null,
      d.cancel_reason ? fact(t("session.cancel_reason"), d.cancel_reason) : null,
      d.acknowledged_at ? fact(t("session.acknowledged_at"), dateTime(d.acknowledged_at)) : null,
      fact(t("session.question"), d.question),
      d.clinical_summary ? fact(t("form.summary"), d.clinical_summary) : null,
      (d.attachments || []).length ? fact(t("form.section.attachments"), h("ul.files", d.attachments.map((a) =>
        h("li", h("a", { href: `/api/v1/attachments/${a.id}`, target: "_blank", rel: "noopener" }, a.name), " ", h("span.muted", t("akind." + a.kind)))))) : null);

    clear(box).append(...[
      h("div.page-head", h("h1", t("kind." + d.kind), pt ? " · " + pt.name : ""), sessionBadge(d.status),
        breached.has(id) && d.status === "requested" ? h("span.badge.breach", t("sessions.breach")) : null),
      h("section.card.session", { "data-id": d.id, "data-status": d.status, "data-version": d.version }, facts, acts.length ? h("div.actions.session-actions", acts) : null),
      opinionSection(requester, target && specialist && assigned, deptName, tgtDepts, who),
      h("section.card", h("h2", t("session.history")),
        h("ol.history", events.map((e) => h("li", h("time", dateTime(e.at)), " ", t("sevent." + e.action), e.to && e.from !== e.to ? ` → ${t("sstatus." + e.to)}` : "", e.reason ? t("session.event_reason", { reason: eventReason(e) }) : "")))),
      escalations.length ? h("section.card", h("h2", t("session.escalations")),
        h("ul.plain", escalations.map((e) => h("li", h("span.badge.breach", t("sessions.breach")), " ", t("session.escalation", { due: dateTime(e.due), raised: dateTime(e.raised_at) }))))) : null,
    ].filter(Boolean));
  }

  function opinionSection(requester, author, deptName, tgtDepts, who) {
    const op = d.opinion;
    const sec = h("section.card.opinion#opinion", h("h2", t("opinion.title")));
    // A teaching round has no opinion; a declined or cancelled session never gets one.
    if (!["consult", "mdt", "imaging_review", "expert_clinic"].includes(d.kind) || ["declined", "cancelled"].includes(d.status)) return null;
    if (op && op.signed_at) {
      sec.append(h("dl.facts.signed-opinion",
        fact(t("opinion.findings"), op.findings), fact(t("opinion.impression"), op.impression), fact(t("opinion.recommendations"), op.recommendations),
        (op.diagnoses || []).length ? fact(t("form.diagnoses"), op.diagnoses.map((x) => `${x.code} ${x.text}`).join(t("list.sep"))) : null,
        fact(t("opinion.referral"), op.referral_advised ? t("opinion.referral_yes", { dept: deptName(op.suggested_department_id) || "—" }) : t("opinion.referral_no")),
        fact(t("opinion.signed"), `${who(op.signed_by)} · ${dateTime(op.signed_at)}`),
        fact(t("opinion.digest"), h("code", (op.digest || "").slice(0, 16)))));
      if (requester && op.referral_advised && d.patient_id && has("county_doctor", "dispatched_doctor", "specialist")) {
        sec.append(h("div.actions", h("button.btn.primary#draft-referral", { type: "button", on: { click: draftReferral } }, t("opinion.draft_referral"))));
      }
      sec.append(h("h3", t("addenda.title")));
      if ((d.addenda || []).length) sec.append(h("ol.addenda", d.addenda.map((a) => h("li", { "data-seq": a.seq }, h("p", a.text), h("p.muted", `${who(a.signed_by)} · ${dateTime(a.signed_at)}`)))));
      else sec.append(h("p.muted", t("addenda.none")));
      if (author) sec.append(addendumForm());
      return sec;
    }
    if (!author || !opinionStates.includes(d.status)) {
      sec.append(h("p.muted", t("opinion.pending")));
      return sec;
    }
    // The assigned specialist writes the draft, then signs it.
    const o = op || {};
    const findings = h("textarea#op-findings", { rows: 4 }, o.findings || "");
    const impression = h("textarea#op-impression", { rows: 3 }, o.impression || "");
    const recs = h("textarea#op-recommendations", { rows: 3 }, o.recommendations || "");
    const advised = h("input#op-referral", { type: "checkbox", checked: !!o.referral_advised });
    const dept = h("select#op-department", h("option", { value: "" }, t("form.choose")), tgtDepts.map((x) => h("option", { value: x.id, selected: x.id === o.suggested_department_id }, x.name)));
    const deptField = field(t("opinion.department"), dept, { name: "opinion.suggested_department_id" });
    deptField.hidden = !advised.checked;
    advised.addEventListener("change", () => { deptField.hidden = !advised.checked; if (!advised.checked) dept.value = ""; });
    const banner = h("p.form-error", { role: "alert", hidden: true });
    const signable = d.status === "ended" || (d.kind === "imaging_review" && ["accepted", "scheduled"].includes(d.status));
    const form = h("form.opinion-form", { novalidate: true }, banner,
      field(t("opinion.findings"), findings, { name: "opinion.findings", wide: true }),
      field(t("opinion.impression"), impression, { name: "opinion.impression", wide: true }),
      field(t("opinion.recommendations"), recs, { name: "opinion.recommendations", wide: true }),
      h("div.field", h("label.check", { for: "op-referral" }, advised, " ", t("opinion.referral_advised"))), deptField,
      h("p.hint", signable ? t("opinion.sign_hint") : t("opinion.sign_later")),
      h("div.form-actions",
        h("button.btn#save-opinion", { type: "button", on: { click: () => save(false) } }, t("form.save_draft")),
        h("button.btn.primary#sign-opinion", { type: "button", disabled: !signable, on: { click: () => save(true) } }, t("opinion.sign"))));
    form.addEventListener("submit", (e) => e.preventDefault());
    const input = () => ({ findings: findings.value, impression: impression.value, recommendations: recs.value, diagnoses: o.diagnoses || [], referral_advised: advised.checked, suggested_department_id: advised.checked ? dept.value : "" });
    async function save(sign) {
      clearErrors(form);
      try {
        if (sign) {
          const ok = await dialog(t("opinion.sign_confirm_title"), h("p", t("opinion.sign_confirm")), { submitLabel: t("opinion.sign") });
          if (!ok) return;
          d = (await request("POST", `/sessions/${id}/actions/sign_opinion`, { body: { opinion: input() }, ifMatch: d.version })).body;
          toast(t("opinion.signed_toast"));
        } else {
          d = await put(`/sessions/${id}/opinion`, input(), { ifMatch: d.version });
          toast(t("form.draft_saved"));
        }
        await load();
      } catch (err) {
        if (err instanceof ApiError && err.status === 412) { toast(t("error.stale_session"), "error"); await load(); return; }
        if (err instanceof ApiError) showErrors(form, err); else throw err;
      }
    }
    sec.append(form);
    return sec;
  }

  function addendumForm() {
    const text = h("textarea#addendum-text", { rows: 3 });
    const banner = h("p.form-error", { role: "alert", hidden: true });
    const form = h("form.addendum-form", { novalidate: true }, banner, field(t("addenda.new"), text, { name: "text", wide: true }),
      h("button.btn#add-addendum", { type: "submit" }, t("addenda.sign")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      clearErrors(form);
      try {
        await post(`/sessions/${id}/opinion/addenda`, { text: text.value });
        toast(t("addenda.signed"));
        await load();
      } catch (err) { if (err instanceof ApiError) showErrors(form, err); else throw err; }
    });
    return form;
  }

  // act runs one state-machine action at the version shown.
  async function act(action, body) {
    try {
      d = (await request("POST", `/sessions/${id}/actions/${action}`, { body, ifMatch: d.version })).body;
      announce(t("sstatus." + d.status));
      await load();
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) { toast(t("error.stale_session"), "error"); await load(); return; }
      if (err instanceof ApiError) { toast(Object.values(err.fields)[0] || err.message, "error"); return; }
      throw err;
    }
  }
  // inDialog runs an action from a dialog's form, its errors shown there.
  function inDialog(action, title, body, makeInput, opts = {}) {
    return dialog(title, body, { ...opts, onSubmit: async () => {
      try {
        d = (await request("POST", `/sessions/${id}/actions/${action}`, { body: makeInput(), ifMatch: d.version })).body;
      } catch (err) {
        if (err instanceof ApiError && err.status === 412) { d = await get(`/sessions/${id}`); }
        throw err;
      }
    } }).then((ok) => { if (ok) background(load()); });
  }
  async function accept() {
    // One specialist per requested department; the first is the caller.
    // Other specialists are named by their account id (a specialist knows
    // their colleagues'; the user list is the administrator's).
    const depts = await departments(d.target_hospital_id).catch(() => []);
    const rows = (d.target_department_ids || []).map((dep, i) => {
      const inp = h("input", { value: i === 0 ? me : "", autocomplete: "off", "data-dept": dep });
      return field(t("saction.assign", { dept: (depts.find((x) => x.id === dep) || {}).name || dep }), inp, { name: `specialists[${i}].specialist_id` });
    });
    const note = h("input", { autocomplete: "off" });
    await inDialog("accept", t("saction.accept"), h("div", h("p.hint", t("saction.assign_hint")), rows, field(t("saction.note"), note, { name: "reason" })),
      () => ({ specialists: rows.map((r) => { const inp = r.querySelector("input"); return { specialist_id: inp.value.trim(), department_id: inp.dataset.dept }; }).filter((a) => a.specialist_id), reason: note.value }),
      { submitLabel: t("saction.accept") });
  }
  async function decline() {
    const reason = h("textarea#decline-reason", { rows: 3 });
    await inDialog("decline", t("saction.decline"), field(t("saction.reason"), reason, { name: "reason" }), () => ({ reason: reason.value }), { danger: true, submitLabel: t("saction.decline") });
  }
  async function cancel() {
    const reason = h("textarea", { rows: 3 });
    await inDialog("cancel", t("saction.cancel"), field(t("saction.reason"), reason, { name: "reason" }), () => ({ reason: reason.value }), { danger: true, submitLabel: t("saction.cancel") });
  }
  async function schedule() {
    const start = new Date(Math.ceil((Date.now() + 30 * 60000) / 900000) * 900000);
    const from = h("input#schedule-start", { type: "datetime-local", value: d.schedule ? toLocalInput(new Date(d.schedule.start)) : toLocalInput(start) });
    const to = h("input#schedule-end", { type: "datetime-local", value: d.schedule ? toLocalInput(new Date(d.schedule.end)) : toLocalInput(new Date(start.getTime() + 30 * 60000)) });
    await inDialog("schedule", t("saction.schedule"), h("div.row", field(t("session.start"), from, { name: "schedule.start" }), field(t("session.end"), to, { name: "schedule.end" })),
      () => ({ schedule: { start: fromLocalInput(from.value), end: fromLocalInput(to.value) } }), { submitLabel: t("saction.schedule") });
  }
  async function draftReferral() {
    try {
      const ref = await post(`/sessions/${id}/opinion/referral`, {}, { idempotent: true });
      toast(t("opinion.referral_drafted"));
      go(`#/referrals/new?edit=${ref.id}`);
    } catch (err) {
      if (err instanceof ApiError) { toast(Object.values(err.fields)[0] || err.message, "error"); return; }
      throw err;
    }
  }

  await load();
  const stop = startTicking(box, breached);
  let pending = null;
  const stream = live("/api/v1/sessions/stream", {
    onReady: () => background(load()),
    onState: setLiveState,
    on: {
      changed: (n) => {
        if (!n || n.id !== id || (d && n.version <= d.version)) return;
        clearTimeout(pending);
        // Keep a draft being typed: only the state and the signed opinion redraw.
        pending = setTimeout(() => background(load().then(() => announce(t("live.session_changed", { kind: t("kind." + d.kind), status: t("sstatus." + d.status) })))), 150);
      },
      escalated: (n) => { if (n && n.id === id) { breached.add(id); background(load()); } },
    },
  });
  return () => { clearTimeout(pending); stop(); stream.close(); };
}

// eventReason shows a schedule's period (recorded as two UTC instants) in
// the hospital's time, an addendum's by its number; other reasons are the
// words someone wrote.
function eventReason(e) {
  const a = e.action === "addendum" && /^addendum (\d+)$/.exec(e.reason);
  if (a) return "#" + a[1];
  const m = e.action === "schedule" && /^(\S+) – (\S+)$/.exec(e.reason);
  return m ? scheduleText({ schedule: { start: m[1], end: m[2] } }) : e.reason;
}

function fact(label, value) {
  return [h("dt", label), h("dd", value)];
}
