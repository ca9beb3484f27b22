// The program office's report page, from GET /program-reports: a scope
// (the office's province, one hospital or one pairing) and a period; the
// report's key figures as tiles, workload by category and referrals up and
// down as SVG charts (helpers shared with office.js), sessions held by kind,
// a pairing's compliance checklist for the year, the half-year reports due
// soon, and links to the CSV, Excel and printable exports (plain GETs: the
// session cookie goes with them).
import { get, qs, ApiError, background } from "../api.js";
import { t } from "../i18n.js";
import { h, svg, clear, field, select, showErrors, clearErrors } from "../ui.js";
import { session } from "../session.js";
import { hospitalMap } from "../names.js";
import { tile, chartCard, dataTable, niceMax, axisY, legend, W, H, PAD } from "./office.js";

// The work categories of a report's workload, in the order of the export.
const categories = ["outpatients", "ward_rounds", "operations", "surgical_demonstrations", "teaching_rounds", "lectures",
  "case_discussions", "consultations", "people_trained", "free_clinics", "free_clinic_people", "new_techniques"];
const kinds = ["consult", "mdt", "teaching_round", "imaging_review", "expert_clinic"];

// periods lists the labels the API reads, newest first: this and last
// year, their halves, quarters and months up to today.
function periods(now) {
  const out = [];
  const y = now.getFullYear();
  const m = now.getMonth() + 1;
  for (const year of [y, y - 1]) {
    const last = year === y ? m : 12;
    for (let h2 = 2; h2 >= 1; h2--) if ((h2 - 1) * 6 < last) out.push(`${year}-H${h2}`);
    for (let q = 4; q >= 1; q--) if ((q - 1) * 3 < last) out.push(`${year}-Q${q}`);
    for (let mm = last; mm >= 1; mm--) out.push(`${year}-${String(mm).padStart(2, "0")}`);
    out.push(String(year));
  }
  return out;
}

export async function render(main) {
  const now = new Date();
  const [hospitals, pairings] = await Promise.all([hospitalMap(), get("/pairings" + qs({ limit: 200 }))]);
  const name = (id) => (hospitals.get(id) || { name: id }).name;
  const pairName = (p) => `${name(p.supporting_hospital_id)} → ${name(p.recipient_hospital_id)}`;
  const province = session.hospital ? session.hospital.province : "";

  const scopeOpts = [];
  if (province) scopeOpts.push([`province:${province}`, t("prog.scope_province", { province })]);
  for (const p of pairings.items || []) scopeOpts.push([`pairing:${p.id}`, t("prog.scope_pairing", { name: pairName(p) })]);
  for (const x of [...hospitals.values()].sort((a, b) => a.name.localeCompare(b.name))) scopeOpts.push([`hospital:${x.id}`, x.name]);
  const scope = select(scopeOpts, scopeOpts.length ? scopeOpts[0][0] : "", { id: "prog-scope" });
  const half = `${now.getFullYear()}-H${now.getMonth() < 6 ? 1 : 2}`;
  const period = select(periods(now).map((p) => [p, p]), half, { id: "prog-period" });
  const form = h("form.filters", { novalidate: true },
    h("p.form-error", { role: "alert", hidden: true }),
    field(t("prog.scope"), scope, { name: "scope" }), field(t("prog.period"), period, { name: "period" }),
    h("button.btn.primary", { type: "submit" }, t("stats.show")));
  const body = h("div.dashboard#program", { "aria-live": "polite", "aria-busy": "false" });

  const pairSel = select((pairings.items || []).map((p) => [p.id, pairName(p)]), (pairings.items || [])[0] ? pairings.items[0].id : "", { id: "prog-pairing" });
  const compForm = h("form.filters", { novalidate: true },
    h("p.form-error", { role: "alert", hidden: true }),
    field(t("prog.pairing"), pairSel, { name: "pairing_id" }),
    h("button.btn", { type: "submit" }, t("stats.show")));
  const compBody = h("div#compliance", { "aria-live": "polite" });
  const remBody = h("div#reminders");

  main.append(h("div.page-head", h("div", h("h1", t("prog.title")), h("p.muted", session.hospital ? session.hospital.name : ""))),
    h("section.card", form), body,
    h("section.card", h("h2", t("prog.compliance")), compForm, compBody),
    h("section.card", h("h2", t("prog.reminders")), remBody));

  function query() {
    const [kind, id] = scope.value.split(/:(.*)/s);
    const q = { period: period.value };
    if (kind === "province") q.province = id;
    else if (kind === "pairing") q.pairing_id = id;
    else q.hospital_id = id;
    return q;
  }
  async function load() {
    clearErrors(form);
    body.setAttribute("aria-busy", "true");
    try {
      const q = query();
      draw(await get("/program-reports" + qs(q)), q);
    } catch (err) {
      if (err instanceof ApiError) { clear(body); showErrors(form, err); } else throw err;
    } finally { body.setAttribute("aria-busy", "false"); }
  }
  function draw(rep, q) {
    const link = (format, label, download) => h("a.btn#prog-" + format, { href: "/api/v1/program-reports" + qs({ ...q, format }), download: download ? "" : null, target: download ? null : "_blank", rel: "noopener" }, label);
    const a = rep.attendance;
    const ar = rep.arrivals;
    const ev = rep.evaluations;
    clear(body).append(
      h("section.card",
        h("h2", `${rep.scope.name} · ${rep.period.label} (${rep.period.from} – ${rep.period.to})`),
        h("p.actions", link("csv", t("prog.csv"), true), " ", link("xlsx", t("prog.xlsx"), true), " ", link("html", t("prog.html"), false))),
      h("div.tiles",
        tile(t("prog.pairings"), rep.pairings), tile(t("prog.postings"), rep.postings),
        tile(t("prog.attendance"), `${Math.round(100 * a.rate)}%`, a.rate < 0.9 && a.work_days > 0 ? "warn" : ""),
        tile(t("prog.arrivals_on_time"), `${ar.on_time}/${ar.due}`, ar.late + ar.missing > 0 ? "warn" : ""),
        tile(t("prog.evaluations"), ev.filed, ev.overdue > 0 ? "warn" : ""),
        tile(t("prog.trainees"), rep.trainees.staff), tile(t("prog.sessions"), rep.sessions.total),
        tile(t("direction.up"), rep.referrals.up), tile(t("direction.down"), rep.referrals.down)),
      h("div.charts",
        chartCard(t("prog.workload"), workloadChart(rep.workload.total), dataTable([t("prog.category"), t("prog.logged"), t("prog.total")],
          categories.map((c) => [t("work." + c), rep.workload.logged[c] || 0, rep.workload.total[c] || 0]))),
        chartCard(t("prog.referrals_sessions"), pairChart(rep), dataTable([t("prog.category"), t("prog.count")],
          [[t("direction.up"), rep.referrals.up], [t("direction.down"), rep.referrals.down], ...kinds.map((k) => [t("kind." + k), (rep.sessions.by_kind || {})[k] || 0])]))),
      h("section.card", h("h2", t("prog.details")), dataTable([t("prog.figure"), t("prog.value")], [
        [t("prog.work_days"), a.work_days], [t("prog.present"), a.present], [t("prog.confirmed"), a.confirmed], [t("prog.leave"), a.leave], [t("prog.absent"), a.absent],
        [t("prog.arr_late"), ar.late], [t("prog.arr_missing"), ar.missing], [t("prog.arr_pending"), ar.pending],
        [t("prog.ev_avg"), ev.filed ? ev.average_total.toFixed(1) : "—"], [t("prog.ev_late"), ev.late], [t("prog.ev_overdue"), ev.overdue],
        [t("prog.tr_stays"), rep.trainees.stays], [t("prog.tr_month"), rep.trainees.month_or_more], [t("prog.tr_days"), rep.trainees.days_in_period],
        [t("prog.unconfirmed"), rep.workload.unconfirmed_entries]])));
  }

  async function loadCompliance() {
    clearErrors(compForm);
    if (!pairSel.value) { clear(compBody).append(h("p.muted", t("stats.no_data"))); return; }
    try {
      const c = await get("/program-reports/compliance" + qs({ pairing_id: pairSel.value, year: period.value.slice(0, 4) }));
      clear(compBody).append(h("p.muted", `${c.supporting_name} → ${c.recipient_name} · ${c.year}`),
        h("ul.checklist", (c.items || []).map((it) => h("li.light-" + it.light, h("span.badge.light." + it.light, t("light." + it.light)), " ", h("strong", it.label), " — ", it.reason))));
    } catch (err) {
      if (err instanceof ApiError) { clear(compBody); showErrors(compForm, err); } else throw err;
    }
  }
  async function loadReminders() {
    const r = await get("/program-reports/reminders");
    const items = r.items || [];
    clear(remBody).append(items.length
      ? dataTable([t("prog.pairing"), t("prog.period"), t("prog.due_on"), t("prog.days_left")],
        items.map((x) => [`${name(x.supporting_hospital_id)} → ${name(x.recipient_hospital_id)}`, x.period.label, x.due_on, x.days_left]))
      : h("p.muted", t("prog.no_reminders")));
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); background(Promise.all([load(), loadCompliance()])); });
  compForm.addEventListener("submit", (e) => { e.preventDefault(); background(loadCompliance()); });
  await Promise.all([load(), loadCompliance(), loadReminders()]);
}

// workloadChart: one horizontal bar per work category, Duikou's own
// consultations and teaching rounds included.
function workloadChart(total) {
  const rows = categories.map((c) => [c, total[c] || 0]);
  const max = niceMax(Math.max(1, ...rows.map((r) => r[1])));
  const HH = 300;
  const left = 130;
  const iw = W - left - 50;
  const rh = (HH - 12) / rows.length;
  const g = svg("svg", { viewBox: `0 0 ${W} ${HH}`, class: "chart", role: "img", "aria-label": t("prog.workload") });
  rows.forEach(([c, v], i) => {
    const y = 6 + i * rh;
    const w = (iw * v) / max;
    g.append(svg("text", { x: left - 8, y: y + rh * 0.65, class: "tick", "text-anchor": "end" }, t("work." + c)),
      svg("rect", { x: left, y: y + rh * 0.15, width: Math.max(v ? 1 : 0, w), height: rh * 0.7, class: "bar-up" }, svg("title", {}, `${t("work." + c)}: ${v}`)),
      svg("text", { x: left + w + 6, y: y + rh * 0.65, class: "tick" }, String(v)));
  });
  return g;
}

// pairChart: referrals up and down, then sessions held by kind, as columns.
function pairChart(rep) {
  const cols = [[t("direction.up"), rep.referrals.up, "bar-up"], [t("direction.down"), rep.referrals.down, "bar-down"],
    ...kinds.map((k) => [t("kind." + k), (rep.sessions.by_kind || {})[k] || 0, "bar-session"])];
  const max = niceMax(Math.max(1, ...cols.map((c) => c[1])));
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("prog.referrals_sessions") });
  axisY(g, max, (v) => String(Math.round(v)));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const slot = iw / cols.length;
  cols.forEach(([label, v, cls], i) => {
    const x = PAD.l + i * slot + slot * 0.2;
    const hh = (ih * v) / max;
    g.append(svg("rect", { x, y: PAD.t + ih - hh, width: slot * 0.6, height: Math.max(0, hh), class: cls }, svg("title", {}, `${label}: ${v}`)),
      svg("text", { x: x + slot * 0.3, y: H - PAD.b + 14, class: "tick", "text-anchor": "middle" }, label));
  });
  legend(g, [[t("prog.referrals"), "bar-up"], [t("prog.sessions"), "bar-session"]]);
  return g;
}
