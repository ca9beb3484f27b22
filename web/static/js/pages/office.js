// The program office's dashboard, from GET /referral-stats: referrals up and
// down per month, time to decision by priority band, deadline breaches, and
// the top up-referral diagnoses per county hospital. Charts are drawn as
// SVG here (no chart library); each has its figures as a table too. The
// chart helpers are exported for the program report page (program.js).
import { get, qs, ApiError, background } from "../api.js";
import { t } from "../i18n.js";
import { h, svg, clear, field, dayISO, humanSeconds, showErrors, clearErrors } from "../ui.js";
import { session } from "../session.js";

const bands = ["green", "emergency", "urgent", "routine"];

export async function render(main) {
  const now = new Date();
  const from = h("input#stats-from", { type: "date", value: dayISO(new Date(now.getFullYear() - 1, now.getMonth() + 1, 1)) });
  const to = h("input#stats-to", { type: "date", value: dayISO(now) });
  const form = h("form.filters", { novalidate: true },
    h("p.form-error", { role: "alert", hidden: true }),
    field(t("stats.from"), from, { name: "from" }), field(t("stats.to"), to, { name: "to" }),
    h("button.btn.primary", { type: "submit" }, t("stats.show")));
  const body = h("div.dashboard#dashboard", { "aria-live": "polite", "aria-busy": "false" });
  main.append(h("div.page-head", h("div", h("h1", t("stats.title")), h("p.muted", session.hospital ? session.hospital.name : ""))), h("section.card", form), body);

  async function load() {
    clearErrors(form);
    body.setAttribute("aria-busy", "true");
    try {
      const rep = await get("/referral-stats" + qs({ from: from.value, to: to.value, period: "month", top: 10, county_top: 5 }));
      draw(rep);
    } catch (err) {
      if (err instanceof ApiError) showErrors(form, err); else throw err;
    } finally { body.setAttribute("aria-busy", "false"); }
  }
  function draw(rep) {
    const totalBreaches = rep.periods.reduce((s, p) => s + p.breaches.claim + p.breaches.decision, 0);
    const green = rep.periods.reduce((s, p) => s + p.green_channel, 0);
    const up = rep.periods.reduce((s, p) => s + ((p.by_direction || {}).up || 0), 0);
    const down = rep.periods.reduce((s, p) => s + ((p.by_direction || {}).down || 0), 0);
    clear(body).append(
      h("div.tiles",
        tile(t("stats.tickets"), rep.tickets), tile(t("stats.up"), up), tile(t("stats.down"), down),
        tile(t("stats.green"), green), tile(t("stats.breaches"), totalBreaches, totalBreaches > 0 ? "warn" : "")),
      h("div.charts",
        chartCard(t("stats.per_month"), monthChart(rep.periods), dataTable([t("stats.month"), t("direction.up"), t("direction.down")],
          rep.periods.map((p) => [p.label, (p.by_direction || {}).up || 0, (p.by_direction || {}).down || 0]))),
        chartCard(t("stats.time_to_decision"), timingChart(rep.timings), dataTable([t("stats.band"), t("stats.median"), t("stats.p90"), t("stats.n")],
          bands.map((b) => { const x = (rep.timings || []).find((y) => y.band === b); return [t("band." + b), humanSeconds(x && x.to_decision.p50_seconds), humanSeconds(x && x.to_decision.p90_seconds), x ? x.to_decision.n : 0]; }))),
        chartCard(t("stats.breaches_by_band"), breachChart(rep.breaches), dataTable([t("stats.band"), t("breach.claim"), t("breach.decide")],
          bands.map((b) => { const x = (rep.breaches || []).find((y) => y.band === b) || { claim: 0, decision: 0 }; return [t("band." + b), x.claim, x.decision]; }))),
        h("section.card.chart-card.wide", h("h2", t("stats.top_by_county")), countyDiagnoses(rep.top_diagnoses_by_county || []))));
  }
  form.addEventListener("submit", (e) => { e.preventDefault(); background(load()); });
  await load();
}

export function tile(label, value, kind = "") { return h("div.tile" + (kind ? "." + kind : ""), h("div.tile-value", String(value)), h("div.tile-label", label)); }

export function chartCard(title, chart, table) {
  return h("section.card.chart-card", h("h2", title), chart, h("details.data", h("summary", t("stats.show_table")), table));
}
export function dataTable(head, rows) {
  return h("table.list.compact", h("thead", h("tr", head.map((x) => h("th", { scope: "col" }, x)))), h("tbody", rows.map((r) => h("tr", r.map((c) => h("td", String(c)))))));
}

export const W = 560;
export const H = 240;
export const PAD = { l: 40, r: 12, t: 16, b: 40 };

// niceMax is the top of a count axis with four whole, round steps.
export function niceMax(v) {
  const raw = Math.max(1, v) / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 3, 5, 10]) if (m * p >= raw && Number.isInteger(m * p)) return 4 * m * p;
  return 4 * 10 * p;
}
export function axisY(g, max, fmt = String) {
  const ih = H - PAD.t - PAD.b;
  for (let i = 0; i <= 4; i++) {
    const y = PAD.t + ih - (ih * i) / 4;
    g.append(svg("line", { x1: PAD.l, x2: W - PAD.r, y1: y, y2: y, class: "grid" }),
      svg("text", { x: PAD.l - 6, y: y + 4, class: "tick", "text-anchor": "end" }, fmt((max * i) / 4)));
  }
}
export function legend(g, items) {
  let x = PAD.l;
  for (const [label, cls] of items) {
    g.append(svg("rect", { x, y: H - 14, width: 10, height: 10, class: cls }), svg("text", { x: x + 14, y: H - 5, class: "tick" }, label));
    x += 16 + label.length * 12 + 20;
  }
}

// monthChart: grouped bars, up and down per month.
function monthChart(periods) {
  const max = niceMax(Math.max(1, ...periods.flatMap((p) => [(p.by_direction || {}).up || 0, (p.by_direction || {}).down || 0])));
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("stats.per_month") });
  axisY(g, max, (v) => String(Math.round(v)));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const slot = iw / Math.max(1, periods.length);
  const bw = Math.max(3, Math.min(16, slot / 2.6));
  periods.forEach((p, i) => {
    const x0 = PAD.l + i * slot + slot / 2;
    [["up", -bw - 1, "bar-up"], ["down", 1, "bar-down"]].forEach(([k, dx, cls]) => {
      const v = (p.by_direction || {})[k] || 0;
      const hh = (ih * v) / max;
      g.append(svg("rect", { x: x0 + dx, y: PAD.t + ih - hh, width: bw, height: Math.max(0, hh), class: cls }, svg("title", {}, `${p.label} ${t("direction." + k)}: ${v}`)));
    });
    if (periods.length <= 13 || i % 2 === 0) g.append(svg("text", { x: x0, y: H - PAD.b + 14, class: "tick", "text-anchor": "middle" }, p.label.slice(5) || p.label));
  });
  legend(g, [[t("direction.up"), "bar-up"], [t("direction.down"), "bar-down"]]);
  return g;
}

// timingChart: horizontal bars per band, median solid and 90th percentile as a whisker.
function timingChart(timings) {
  const rows = bands.map((b) => (timings || []).find((x) => x.band === b) || { band: b, to_decision: { n: 0 } });
  const max = Math.max(60, ...rows.map((r) => r.to_decision.p90_seconds || r.to_decision.p50_seconds || 0));
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("stats.time_to_decision") });
  const left = 90;
  const iw = W - left - 70;
  const rh = (H - PAD.t - PAD.b) / rows.length;
  rows.forEach((r, i) => {
    const y = PAD.t + i * rh + rh * 0.2;
    const p50 = r.to_decision.p50_seconds;
    const p90 = r.to_decision.p90_seconds;
    g.append(svg("text", { x: left - 8, y: y + rh * 0.4, class: "tick", "text-anchor": "end" }, t("band." + r.band)));
    if (p50 === null || p50 === undefined) { g.append(svg("text", { x: left, y: y + rh * 0.4, class: "tick muted" }, t("stats.no_data"))); return; }
    const w50 = (iw * p50) / max;
    g.append(svg("rect", { x: left, y, width: Math.max(1, w50), height: rh * 0.5, class: "bar-band-" + r.band }, svg("title", {}, `${t("stats.median")} ${humanSeconds(p50)}`)));
    if (p90 !== null && p90 !== undefined) {
      const x90 = left + (iw * p90) / max;
      g.append(svg("line", { x1: left + w50, x2: x90, y1: y + rh * 0.25, y2: y + rh * 0.25, class: "whisker" }),
        svg("line", { x1: x90, x2: x90, y1: y + rh * 0.05, y2: y + rh * 0.45, class: "whisker" }));
    }
    g.append(svg("text", { x: left + (iw * (p90 || p50)) / max + 6, y: y + rh * 0.4, class: "tick" }, `${humanSeconds(p50)} / ${humanSeconds(p90)}`));
  });
  g.append(svg("text", { x: left, y: H - 8, class: "tick muted" }, t("stats.timing_legend")));
  return g;
}

// breachChart: claim and decision breaches per band, stacked.
function breachChart(breaches) {
  const rows = bands.map((b) => (breaches || []).find((x) => x.band === b) || { band: b, claim: 0, decision: 0 });
  const max = niceMax(Math.max(1, ...rows.map((r) => r.claim + r.decision)));
  const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("stats.breaches_by_band") });
  axisY(g, max, (v) => String(Math.round(v)));
  const iw = W - PAD.l - PAD.r;
  const ih = H - PAD.t - PAD.b;
  const slot = iw / rows.length;
  rows.forEach((r, i) => {
    const x = PAD.l + i * slot + slot * 0.25;
    const hc = (ih * r.claim) / max;
    const hd = (ih * r.decision) / max;
    g.append(svg("rect", { x, y: PAD.t + ih - hc, width: slot * 0.5, height: hc, class: "bar-claim" }, svg("title", {}, `${t("breach.claim")}: ${r.claim}`)),
      svg("rect", { x, y: PAD.t + ih - hc - hd, width: slot * 0.5, height: hd, class: "bar-decide" }, svg("title", {}, `${t("breach.decide")}: ${r.decision}`)),
      svg("text", { x: x + slot * 0.25, y: H - PAD.b + 14, class: "tick", "text-anchor": "middle" }, t("band." + r.band)));
  });
  legend(g, [[t("breach.claim"), "bar-claim"], [t("breach.decide"), "bar-decide"]]);
  return g;
}

function countyDiagnoses(list) {
  if (!list.length) return h("p.muted", t("stats.no_data"));
  return h("div.county-grid", list.map((c) => {
    const max = Math.max(1, ...c.items.map((x) => x.count));
    return h("div.county", h("h3", c.name),
      c.items.length ? h("ol.hbars", c.items.map((x) => {
        const bar = h("span.hbar-fill");
        bar.style.width = `${Math.round((100 * x.count) / max)}%`;
        return h("li", h("span.hbar-label", h("span.code", x.code), " ", x.text), h("span.hbar", bar), h("span.hbar-n", String(x.count)));
      })) : h("p.muted", t("stats.no_data")),
      c.hidden ? h("p.muted.small", t("stats.hidden", { n: c.hidden, min: c.min_count })) : null);
  }));
}
