// Remote sessions the hospital takes part in: the requests it received
// (with their response deadlines counting down, a breach flagged) and the
// ones it sent, updated live from /sessions/stream.
import { get, qs, background } from "../api.js";
import { t } from "../i18n.js";
import { h, clear, dateTime, dayISO, duration, announce, alertNow } from "../ui.js";
import { live } from "../sse.js";
import { session, has } from "../session.js";
import { hospitalName, patient } from "../names.js";
import { setLiveState } from "../referral-view.js";

export const kinds = ["consult", "mdt", "teaching_round", "imaging_review", "expert_clinic"];

export function sessionBadge(status) {
  return h("span.badge.sstatus-" + status, { "data-status": status }, t("sstatus." + status));
}
export function urgencyBadge(u) {
  return h("span.badge.priority-" + u, t("priority." + u));
}
export function scheduleText(s) {
  if (!s.schedule) return "";
  const { start, end } = s.schedule;
  // The end's date only when it falls on another day than the start.
  const sameDay = dayISO(new Date(start)) === dayISO(new Date(end));
  return `${dateTime(start)} – ${sameDay ? dateTime(end).slice(-5) : dateTime(end)}`;
}

// countdown is the time left to answer a request, ticking; it turns into a
// breach flag once the deadline passed (or the server escalated it).
export function countdown(s, breached) {
  if (s.status !== "requested" || !s.respond_by) return null;
  const el = h("span.respond-by", { "data-due": s.respond_by });
  tick(el, breached);
  return el;
}
function tick(el, breached) {
  const left = (new Date(el.dataset.due).getTime() - Date.now()) / 1000;
  const over = left < 0 || breached;
  el.classList.toggle("over", over);
  el.textContent = over ? `${t("sessions.breach")} ${duration(left)}` : t("sessions.left", { time: duration(left) });
}
export function startTicking(root, breached) {
  const timer = setInterval(() => {
    for (const el of root.querySelectorAll(".respond-by")) tick(el, breached && breached.has(el.closest("[data-id]")?.dataset.id));
  }, 1000);
  return () => clearInterval(timer);
}

export async function render(main) {
  const hid = session.user.hospital_id;
  const canRequest = has("county_doctor", "specialist", "dispatched_doctor");
  main.append(h("div.page-head",
    h("h1", t("sessions.title")),
    h("div.actions",
      canRequest ? h("a.btn.primary#new-session", { href: "#/sessions/new" }, t("sessions.new")) : null,
      h("a.btn", { href: "#/clinic" }, t("nav.clinic")))));
  const mineOnly = h("input#mine-only", { type: "checkbox", checked: has("county_doctor") });
  mineOnly.addEventListener("change", () => background(load()));
  const lists = [
    { key: "in", title: t("sessions.incoming"), test: (s) => s.target_hospital_id === hid },
    // A doctor follows their own requests; colleagues' are one tick away.
    { key: "out", title: t("sessions.sent"), test: (s) => s.requesting_hospital_id === hid && (!mineOnly.checked || s.requester_id === session.user.id) },
    { key: "invited", title: t("sessions.invited"), test: (s) => s.target_hospital_id !== hid && s.requesting_hospital_id !== hid },
  ];
  // A specialist answers requests first; a county doctor follows their own.
  if (!has("specialist")) lists.push(lists.shift());
  for (const l of lists) {
    l.body = h("tbody");
    l.empty = h("p.muted.empty", t("sessions.empty"));
    l.section = h("section.card", { "aria-labelledby": "slist-" + l.key },
      h("div.section-head", h("h2", { id: "slist-" + l.key }, l.title),
        l.key === "out" ? h("label.check", { for: "mine-only" }, mineOnly, " ", t("sessions.mine_only")) : null),
      h("div.table-wrap", h("table.list", { "data-list": l.key },
        h("thead", h("tr", ["scol.kind", "col.patient", "col.priority", "col.status", "col.other_hospital", "scol.deadline", "col.updated"].map((k) => h("th", { scope: "col" }, t(k))))),
        l.body)),
      l.empty);
    main.append(l.section);
  }
  const breached = new Set();
  const versions = new Map();

  async function load(changed) {
    const page = await get("/sessions" + qs({ limit: 100 }));
    for (const l of lists) {
      const items = page.items.filter(l.test);
      const rows = await Promise.all(items.map(async (s) => {
        const other = s.requesting_hospital_id === hid ? s.target_hospital_id : s.requesting_hospital_id;
        const [pt, hn] = await Promise.all([s.patient_id ? patient(s.patient_id).catch(() => null) : null, hospitalName(other).catch(() => "")]);
        const fresh = changed && changed.has(s.id) && versions.get(s.id) !== s.version;
        versions.set(s.id, s.version);
        return h("tr" + (fresh ? ".flash" : "") + (breached.has(s.id) ? ".is-breach" : ""), { "data-id": s.id, "data-status": s.status },
          h("td", h("a", { href: `#/sessions/${s.id}` }, t("kind." + s.kind))),
          h("td", pt ? pt.name : "—"),
          h("td", urgencyBadge(s.urgency)),
          h("td", sessionBadge(s.status)),
          h("td", hn),
          h("td", countdown(s, breached.has(s.id)) || scheduleText(s)),
          h("td", dateTime(s.updated_at)));
      }));
      clear(l.body).append(...rows);
      l.empty.hidden = rows.length > 0;
      l.section.hidden = l.key === "invited" && rows.length === 0;
    }
  }
  let pending = null;
  const changed = new Set();
  function reload() {
    clearTimeout(pending);
    pending = setTimeout(() => { const c = new Set(changed); changed.clear(); background(load(c)); }, 150);
  }
  await load();
  const stop = startTicking(main, breached);
  const stream = live("/api/v1/sessions/stream", {
    onReady: reload,
    onState: setLiveState,
    on: {
      changed: (n) => {
        if (!n) return;
        changed.add(n.id);
        announce(t("live.session_changed", { kind: t("kind." + n.kind), status: t("sstatus." + n.status) }));
        reload();
      },
      escalated: (n) => {
        if (!n || breached.has(n.id)) return;
        breached.add(n.id);
        alertNow(t("live.session_breach", { kind: t("kind." + n.kind) }));
        reload();
      },
    },
  });
  return () => { clearTimeout(pending); stop(); stream.close(); };
}
