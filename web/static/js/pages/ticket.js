// One ticket: its content, history and escalations, the actions the caller
// may take now, and the printable slip. It follows the ticket live; a desk
// member holding the claim keeps its lease renewed while the page is open.
import { get, request, ApiError, background } from "../api.js";
import { t } from "../i18n.js";
import { h, clear, field, select, dialog, dateTime, timeOnly, toast, announce, toLocalInput, fromLocalInput } from "../ui.js";
import { live } from "../sse.js";
import { session, has } from "../session.js";
import { hospitalName, departmentName, patient, hospitalMap, departments } from "../names.js";
import { statusBadge, priorityBadge, allowedActions, setLiveState, sideOf } from "../referral-view.js";

const LEASE_RENEW_MS = 45000; // a lease lasts two minutes

export async function render(main, { args }) {
  const id = args[0];
  let r = null;
  const root = h("div.ticket");
  main.append(root);
  let leaseTimer = null;
  let drawnSig = "";

  async function load(flash) {
    const [tk, events, escalations] = await Promise.all([
      get(`/referrals/${id}`), get(`/referrals/${id}/events`), get(`/referrals/${id}/escalations`).catch(() => ({ items: [] })),
    ]);
    r = tk;
    // A re-read that finds nothing new (the stream's "ready", a repeated
    // notice) leaves the page alone, and the keyboard where it was.
    const sig = `${r.version}/${events.items.length}/${escalations.items.length}`;
    if (sig !== drawnSig) {
      drawnSig = sig;
      await draw(events.items, escalations.items, flash);
    }
    keepLease();
  }

  // keepLease renews the caller's claim every 45 s while the page is open,
  // and shows until when the ticket is theirs. The first renewal waits a
  // moment: a claim made on this page reaches the queue (which holds the
  // lease) a little after the database, and renewing before would be refused.
  let leasedUntil = "";
  let retry = null;
  async function renew() {
    const el = () => document.getElementById("lease-until");
    try {
      const res = await request("POST", `/referral-queues/${r.receiving_hospital_id}/leases/${r.id}`);
      leasedUntil = res.body.leased_until;
      if (el()) el().textContent = t("ticket.held_until", { at: timeOnly(leasedUntil) });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 409) return;
      // Refused: either the queue has not caught up with the claim yet, or
      // the claim is gone. The ticket says which.
      const fresh = await get(`/referrals/${r.id}`).catch(() => null);
      if (fresh && fresh.status === "claimed" && fresh.claimed_by === session.user.id) {
        if (el()) el().textContent = t("ticket.lease_pending");
        clearTimeout(retry);
        retry = setTimeout(renew, 3000);
        return;
      }
      // Decided meanwhile (accepted, rejected …): nothing was lost.
      const lost = !fresh || fresh.status === "submitted" || fresh.status === "claimed";
      if (lost) toast(t("ticket.lease_lost"), "error");
      stopLease();
      background(load());
    }
  }
  function keepLease() {
    const mine = r.status === "claimed" && r.claimed_by === session.user.id && has("referral_desk");
    if (mine && !leaseTimer) {
      leaseTimer = setInterval(renew, LEASE_RENEW_MS);
      clearTimeout(retry);
      retry = setTimeout(renew, 1500);
    } else if (!mine) stopLease();
  }
  function stopLease() { clearInterval(leaseTimer); clearTimeout(retry); leaseTimer = null; }

  async function draw(events, escalations, flash) {
    const [pt, fromH, toH, fromD, toD] = await Promise.all([
      patient(r.patient_id).catch(() => null),
      hospitalName(r.referring_hospital_id), hospitalName(r.receiving_hospital_id),
      departmentName(r.referring_hospital_id, r.referring_department_id), departmentName(r.receiving_hospital_id, r.receiving_department_id),
    ]);
    const actions = allowedActions(r);
    const facts = [
      [t("ticket.patient"), pt ? [pt.name, t("sex." + pt.sex), pt.birth_date, pt.national_id_masked].filter(Boolean).join(" · ") : "—"],
      [t("ticket.direction"), t("direction." + r.direction)],
      [t("ticket.from"), `${fromH} ${fromD}`],
      [t("ticket.to"), `${toH} ${toD}`],
      [t("ticket.transfer_risk"), r.transfer_risk ? t("risk." + r.transfer_risk) : "—"],
      [t("ticket.transport"), r.transport && r.transport.mode ? `${t("transport." + r.transport.mode)} · ${t("escort." + (r.transport.escort || "none"))}` : "—"],
      [t("ticket.submitted_at"), dateTime(r.submitted_at) || "—"],
    ];
    if (r.claim_by && ["submitted", "claimed"].includes(r.status)) facts.push([t("ticket.claim_by"), dateTime(r.claim_by)]);
    if (r.decide_by && ["submitted", "claimed"].includes(r.status)) facts.push([t("ticket.decide_by"), dateTime(r.decide_by)]);
    if (r.requested_window) facts.push([t("ticket.window"), `${dateTime(r.requested_window.from)} – ${dateTime(r.requested_window.to)}`]);
    if (r.schedule) facts.push([t("ticket.schedule"), `${t("schedule." + r.schedule.kind)} · ${r.schedule.slot} · ${dateTime(r.schedule.at)}`]);
    if (r.exam_slip_number) facts.push([t("ticket.exam_slip"), r.exam_slip_number + (r.fee_waived ? " · " + t("ticket.fee_waived") : "")]);
    if (r.bed_reservation_id) facts.push([t("ticket.bed"), t("ticket.bed_held")]);
    if (r.reject_reason) facts.push([t("ticket.reject_reason"), t("reject." + r.reject_reason) + (r.decision_note ? " · " + r.decision_note : "")]);
    else if (r.decision_note) facts.push([t("ticket.decision_note"), r.decision_note]);
    if (r.info_question) facts.push([t("ticket.info_question"), r.info_question]);
    if (r.info_answer) facts.push([t("ticket.info_answer"), r.info_answer]);
    if (r.outcome) facts.push([t("ticket.outcome"), t("outcome." + r.outcome) + (r.feedback ? " · " + r.feedback : "")]);
    if (r.end_reason) facts.push([t("ticket.end_reason"), r.end_reason]);
    if (r.redirected_to_id) facts.push([t("ticket.redirected_to"), h("a", { href: `#/referrals/${r.redirected_to_id}` }, t("ticket.open_linked"))]);
    if (r.redirected_from_id) facts.push([t("ticket.redirected_from"), h("a", { href: `#/referrals/${r.redirected_from_id}` }, t("ticket.open_linked"))]);
    if (r.based_on_id) facts.push([t("ticket.based_on"), h("a", { href: `#/referrals/${r.based_on_id}` }, t("ticket.open_linked"))]);

    clear(root).append(
      h("div.page-head" + (r.green_channel ? ".green-head" : ""),
        h("div", h("h1", h("span.number#ticket-number", r.number || t("ticket.draft_number"))), h("p.badges", statusBadge(r.status), " ", priorityBadge(r))),
        h("div.head-actions",
          sideOf(r) === "referrer" && ["draft", "info_requested"].includes(r.status)
            ? h("a.btn#edit-ticket", { href: `#/referrals/new?edit=${r.id}` }, t("action.edit")) : null,
          r.status !== "draft" ? h("a.btn", { href: `/api/v1/referrals/${r.id}/slip`, target: "_blank", rel: "noopener" }, t("ticket.slip")) : null,
          sideOf(r) === "receiver" && r.direction === "up" && ["arrived", "completed", "closed"].includes(r.status)
            ? h("a.btn", { href: `#/referrals/new?direction=down&based_on=${r.id}` }, t("ticket.write_down")) : null)),
      h("div.ticket-grid",
        h("section.card" + (flash ? ".flash" : ""), { "aria-labelledby": "t-facts" },
          h("h2#t-facts", t("ticket.details")),
          h("dl.facts", facts.map(([k, v]) => [h("dt", k), h("dd", v)])),
          h("h3", t("ticket.diagnoses")),
          h("ol.dx-read", (r.diagnoses || []).map((d) => h("li", h("span.code", d.code), " ", d.text))),
          block(t("ticket.reason"), r.reason), block(t("ticket.summary"), r.clinical_summary), block(t("ticket.treatment"), r.treatment_given),
          r.attachments && r.attachments.length ? [h("h3", t("ticket.attachments")),
            h("ul.files", r.attachments.map((a) => h("li", h("a", { href: `/api/v1/attachments/${a.id}` }, a.name), ` (${Math.ceil(a.size / 1024)} KiB)`)))] : null),
        h("div.side",
          h("section.card.actions-card", { "aria-labelledby": "t-actions" },
            h("h2#t-actions", t("ticket.actions")),
            actions.length ? h("div.action-list", actions.map((a) => h("button.btn" + (primary(a) ? ".primary" : "") + (danger(a) ? ".danger-quiet" : ""),
              { type: "button", "data-action": a, on: { click: () => act(a) } }, t("action." + a)))) : h("p.muted", t("ticket.no_actions")),
            r.status === "claimed" && r.claimed_by === session.user.id
              ? [h("p.hint", t("ticket.you_hold")), h("p.hint#lease-until", { "aria-live": "polite" }, leasedUntil ? t("ticket.held_until", { at: timeOnly(leasedUntil) }) : "")] : null),
          h("section.card", { "aria-labelledby": "t-history" },
            h("h2#t-history", t("ticket.history")),
            h("ol.history", events.map((e) => h("li", h("time", dateTime(e.at)), " ", h("strong", t("action." + e.action)),
              e.to ? [" → ", t("status." + e.to)] : null, e.reason_code ? ` · ${t("reject." + e.reason_code)}` : null, eventNote(e) ? h("div.muted", eventNote(e)) : null)))),
          escalations.length ? h("section.card.escalations", { "aria-labelledby": "t-esc" },
            h("h2#t-esc", t("ticket.escalations")),
            h("ul", escalations.map((e) => h("li", h("strong", t("breach." + e.kind)), " · ", t("ticket.due"), " ", dateTime(e.due), " · ", t("ticket.raised"), " ", dateTime(e.raised_at))))) : null)));
  }

  // act runs one action, asking first for what it needs.
  async function act(action) {
    const run = async (body) => {
      const res = await request("POST", `/referrals/${r.id}/actions/${action}`, { body, ifMatch: r.version });
      r = res.body;
      toast(t("ticket.done", { action: t("action." + action), status: t("status." + r.status) }));
      announce(t("ticket.done", { action: t("action." + action), status: t("status." + r.status) }));
      await load();
    };
    const ask = (body, build, opts = {}) => dialog(t("action." + action) + " · " + (r.number || ""), body, {
      submitLabel: t("action." + action), ...opts, onSubmit: async () => run(build()),
    });
    try {
      switch (action) {
        case "accept": return await acceptDialog(r, ask);
        case "reject": {
          const code = select([["", t("form.choose")], ...["no_capacity", "outside_scope", "incomplete_information", "not_indicated", "patient_declined", "other"].map((c) => [c, t("reject." + c)])], "", { id: "reject-code" });
          const why = h("textarea", { rows: 3 });
          return await ask([field(t("dialog.reason_code"), code, { name: "reason_code" }), field(t("dialog.reason"), why, { name: "reason" })],
            () => ({ reason_code: code.value, reason: why.value }), { danger: true });
        }
        case "request_info": {
          const qn = h("textarea#info-question", { rows: 3 });
          return await ask(field(t("dialog.question"), qn, { name: "question" }), () => ({ question: qn.value }));
        }
        case "resubmit": {
          const an = h("textarea", { rows: 3 });
          return await ask([h("p", h("strong", t("ticket.info_question")), " ", r.info_question || ""), field(t("dialog.answer"), an, { name: "answer" })], () => ({ answer: an.value }));
        }
        case "redirect": return await redirectDialog(r, ask);
        case "schedule": {
          const kind = select([["bed", t("schedule.bed")], ["appointment", t("schedule.appointment")]], r.schedule ? r.schedule.kind : "bed", { id: "schedule-kind" });
          const slot = h("input#schedule-slot", { value: r.schedule ? r.schedule.slot : "" });
          const at = h("input#schedule-at", { type: "datetime-local", value: toLocalInput(r.schedule ? new Date(r.schedule.at) : new Date(Date.now() + 3600e3)) });
          return await ask([field(t("dialog.schedule_kind"), kind, { name: "schedule.kind" }), field(t("dialog.slot"), slot, { name: "schedule.slot", hint: t("dialog.slot_hint") }),
            field(t("dialog.at"), at, { name: "schedule.at" })], () => ({ schedule: { kind: kind.value, slot: slot.value, at: fromLocalInput(at.value) } }));
        }
        case "complete": {
          const out = select([["", t("form.choose")], ...["treated_outpatient", "discharged", "referred_back", "transferred_elsewhere", "left_against_advice", "died"].map((o) => [o, t("outcome." + o)])], "", { id: "outcome" });
          const fb = h("textarea", { rows: 4 });
          return await ask([field(t("dialog.outcome"), out, { name: "outcome" }), field(t("dialog.feedback"), fb, { name: "feedback" })], () => ({ outcome: out.value, feedback: fb.value }));
        }
        case "cancel": case "mark_no_show": case "release": {
          const why = h("textarea", { rows: 3 });
          return await ask(field(t("dialog.reason"), why, { name: "reason" }), () => ({ reason: why.value }), { danger: action !== "release" });
        }
        default: return await run({}); // submit, claim, depart, arrive, close: nothing to ask
      }
    } catch (err) {
      if (err instanceof ApiError) {
        toast(err.status === 412 ? t("error.stale") : (Object.values(err.fields)[0] || err.message), "error");
        await load();
      } else throw err;
    }
  }

  await load();
  const stream = live("/api/v1/referrals/stream", {
    onState: setLiveState,
    onReady: () => background(load()),
    on: {
      changed: (n) => {
        if (!n || n.id !== id || (r && n.version <= r.version)) return;
        announce(t("live.ticket_changed", { number: n.number || "", status: t("status." + n.status) }));
        background(load(true));
      },
    },
  });
  return () => { stopLease(); stream.close(); };
}

// eventNote is an event's reason as a reader wants it: the server records a
// schedule as "bed: <slot> at <RFC 3339>" and a completion as its outcome code.
function eventNote(e) {
  if (!e.reason) return "";
  const m = e.action === "schedule" && e.reason.match(/^(bed|appointment): (.*) at (\S+)$/);
  if (m) return `${t("schedule." + m[1])} · ${m[2]} · ${dateTime(m[3])}`;
  if (e.action === "complete" && /^[a-z_]+$/.test(e.reason)) return t("outcome." + e.reason);
  return e.reason;
}

function block(title, text) { return text ? [h("h3", title), h("p.prose", text)] : null; }
const primary = (a) => ["submit", "claim", "accept", "schedule", "arrive", "complete", "resubmit", "depart", "close"].includes(a);
const danger = (a) => ["reject", "cancel", "mark_no_show"].includes(a);

// acceptDialog shows the receiving department's reserved-bed pool: a green
// ticket is accepted into one of its free beds (the server reserves it in
// the same transaction), so the desk sees before accepting whether one is left.
async function acceptDialog(r, ask) {
  let pool = null;
  try { pool = await get(`/hospitals/${r.receiving_hospital_id}/departments/${r.receiving_department_id}/bed-pool`); } catch { /* shown as unknown */ }
  const note = h("textarea#accept-note", { rows: 2 });
  const beds = h("div.bed-pool#bed-pool", { role: "group", "aria-label": t("beds.title") });
  if (pool && pool.size > 0) {
    const held = pool.reservations || [];
    for (let i = 0; i < pool.size; i++) {
      const res = held[i];
      const next = !res && i === held.length;
      beds.append(h("div.bed" + (res ? ".held" : ".free") + (next && r.green_channel ? ".next" : ""),
        { title: res ? res.number : t("beds.free") },
        h("span.bed-no", String(i + 1)), h("span.bed-state", res ? res.number || t("beds.held") : (next && r.green_channel ? t("beds.for_this") : t("beds.free")))));
    }
    if (!held.length && pool.in_use > 0) beds.append(h("p.muted", t("beds.in_use_count", { n: pool.in_use })));
  }
  const summary = pool
    ? h("p.bed-summary", t("beds.summary", { size: pool.size, used: pool.in_use, free: pool.free }))
    : h("p.muted", t("beds.unknown"));
  const warn = r.green_channel && pool && pool.free <= 0 ? h("p.form-error", t("beds.none_free")) : null;
  return ask([h("h3", t("beds.title")), summary, beds, warn,
    r.green_channel ? h("p.hint", t("beds.green_hint")) : null,
    field(t("dialog.accept_note"), note, { name: "reason" })], () => ({ reason: note.value }));
}

async function redirectDialog(r, ask) {
  const hm = await hospitalMap();
  const hs = [...hm.values()].filter((x) => x.id !== r.referring_hospital_id && x.tier !== "authority");
  const hosp = select([["", t("form.choose")], ...hs.map((x) => [x.id, x.name])], r.receiving_hospital_id, { id: "redirect-hospital" });
  const dept = h("select#redirect-department");
  async function loadDepts() {
    clear(dept).append(h("option", { value: "" }, t("form.choose")));
    if (hosp.value) for (const d of await departments(hosp.value)) if (!(hosp.value === r.receiving_hospital_id && d.id === r.receiving_department_id)) dept.append(h("option", { value: d.id }, d.name));
  }
  hosp.addEventListener("change", loadDepts);
  await loadDepts();
  const why = h("textarea", { rows: 2 });
  return ask([field(t("dialog.target_hospital"), hosp, { name: "target.hospital_id" }), field(t("dialog.target_department"), dept, { name: "target.department_id" }),
    field(t("dialog.reason"), why, { name: "reason" })], () => ({ target: { hospital_id: hosp.value, department_id: dept.value }, reason: why.value }));
}

