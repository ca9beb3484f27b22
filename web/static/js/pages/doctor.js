// A clinician's referrals: those the hospital sent and those it receives,
// updated live from /referrals/stream.
import { get, qs, background } from "../api.js";
import { t } from "../i18n.js";
import { h, clear, dateTime, announce } from "../ui.js";
import { live } from "../sse.js";
import { session, has } from "../session.js";
import { hospitalName, patient } from "../names.js";
import { statusBadge, priorityBadge, diagnosisText, setLiveState } from "../referral-view.js";

export async function render(main) {
  const hid = session.user.hospital_id;
  const county = has("county_doctor");
  const lists = [
    { key: "out", title: county ? t("doctor.my_up") : t("doctor.sent"), query: { referring_hospital_id: hid, direction: county ? "up" : undefined } },
    { key: "in", title: county ? t("doctor.incoming_down") : t("doctor.received"), query: { receiving_hospital_id: hid, direction: county ? "down" : undefined } },
  ];
  const header = h("div.page-head",
    h("h1", county ? t("doctor.title") : t("doctor.title_other")),
    session.hospital && session.hospital.tier === "tertiary"
      ? h("a.btn.primary", { href: "#/referrals/new?direction=down" }, t("nav.new_down_referral"))
      : h("a.btn.primary", { href: "#/referrals/new" }, t("nav.new_referral")));
  main.append(header);
  const versions = new Map(); // id → version shown, to mark what changed
  for (const l of lists) {
    l.body = h("tbody");
    l.empty = h("p.muted.empty", { hidden: true }, t("doctor.none"));
    main.append(h("section.card", { "aria-labelledby": "list-" + l.key },
      h("h2", { id: "list-" + l.key }, l.title),
      h("div.table-wrap", h("table.list", { "data-list": l.key },
        h("thead", h("tr", ["col.number", "col.patient", "col.diagnosis", "col.priority", "col.status", "col.other_hospital", "col.updated"].map((k) => h("th", { scope: "col" }, t(k))))),
        l.body)),
      l.empty));
  }

  let pending = null;
  async function load(changed) {
    for (const l of lists) {
      const page = await get("/referrals" + qs({ ...l.query, limit: 100 }));
      const sig = page.items.map((r) => r.id + ":" + r.version).join("|");
      if (sig === l.sig) continue; // nothing new: keep the rows and the focus
      l.sig = sig;
      const rows = await Promise.all(page.items.map(async (r) => {
        const other = r.referring_hospital_id === hid ? r.receiving_hospital_id : r.referring_hospital_id;
        const [pt, hn] = await Promise.all([patient(r.patient_id).catch(() => null), hospitalName(other).catch(() => "")]);
        const fresh = changed && changed.has(r.id) && versions.get(r.id) !== r.version;
        versions.set(r.id, r.version);
        return h("tr" + (fresh ? ".flash" : "") + (r.green_channel ? ".is-green" : ""), { "data-id": r.id, "data-status": r.status },
          h("td", h("a", { href: `#/referrals/${r.id}` }, r.number || t("ticket.draft_number"))),
          h("td", pt ? pt.name : "—"),
          h("td", diagnosisText(r)),
          h("td", priorityBadge(r)),
          h("td", statusBadge(r.status)),
          h("td", hn),
          h("td", dateTime(r.updated_at)));
      }));
      clear(l.body).append(...rows);
      l.empty.hidden = rows.length > 0;
    }
  }
  // Changes come in bursts (claim then accept): read once per burst.
  const changed = new Set();
  function reload() {
    clearTimeout(pending);
    pending = setTimeout(() => { const c = new Set(changed); changed.clear(); background(load(c)); }, 150);
  }
  await load();
  const stream = live("/api/v1/referrals/stream", {
    onReady: reload,
    onState: setLiveState,
    on: {
      changed: (n) => {
        if (!n) return;
        changed.add(n.id);
        announce(t("live.ticket_changed", { number: n.number || "", status: t("status." + n.status) }));
        reload();
      },
    },
  });
  return () => { clearTimeout(pending); stream.close(); };
}
