// The referral desk's live board: the hospital's queue in serving order with
// green-channel tickets pinned on top, a countdown to each ticket's next
// deadline, breaches flagged, and a sound and visual alert when a green
// ticket arrives. Below it, the accepted tickets on their way in (transit
// and arrival). Both follow pushes; nothing reloads the page.
import { get, request, qs, ApiError, background } from "../api.js";
import { t } from "../i18n.js";
import { h, clear, duration, dateTime, timeOnly, toast, announce, alertNow, beep } from "../ui.js";
import { live } from "../sse.js";
import { session, go } from "../session.js";
import { departmentName, hospitalName, patient } from "../names.js";
import { statusBadge, priorityBadge, diagnosisText, setLiveState } from "../referral-view.js";

export async function render(main) {
  const hid = session.user.hospital_id;
  // The details a row shows, read once per version while the board is open.
  const tickets = new Map();
  async function details(item) {
    const c = tickets.get(item.id);
    if (c && c.version === item.version) return c.ticket;
    const tk = await get(`/referrals/${item.id}`);
    tickets.set(item.id, { version: item.version, ticket: tk });
    return tk;
  }
  let sound = localStorage.getItem("duikou.sound") !== "off";
  const soundBtn = h("button.btn#sound-toggle", { type: "button", "aria-pressed": String(sound) }, sound ? t("desk.sound_on") : t("desk.sound_off"));
  soundBtn.addEventListener("click", () => {
    sound = !sound;
    localStorage.setItem("duikou.sound", sound ? "on" : "off");
    soundBtn.setAttribute("aria-pressed", String(sound));
    soundBtn.textContent = sound ? t("desk.sound_on") : t("desk.sound_off");
    if (sound) beep();
  });
  const claimNext = h("button.btn.primary#claim-next", { type: "button" }, t("desk.claim_next"));
  claimNext.addEventListener("click", async () => {
    claimNext.disabled = true;
    try {
      const res = await request("POST", `/referral-queues/${hid}/claim`, { body: {} });
      if (res.status === 204 || !res.body) toast(t("desk.nothing_to_claim"));
      else go(`#/referrals/${res.body.id}`);
    } catch (err) { toast(err.message, "error"); } finally { claimNext.disabled = false; }
  });
  const alertBar = h("div.green-alert#green-alert", { hidden: true, role: "status" });
  const counts = h("p.counts#queue-counts");
  const board = h("ol.board#board", { "aria-label": t("desk.queue") });
  const empty = h("p.muted.empty", { hidden: true }, t("desk.empty"));
  const inbound = h("tbody#inbound");
  const inboundEmpty = h("p.muted.empty", { hidden: true }, t("desk.no_inbound"));
  main.append(
    h("div.page-head", h("div", h("h1", t("desk.title")), counts), h("div.head-actions", soundBtn, claimNext)),
    alertBar,
    h("section.card.board-card", { "aria-labelledby": "q-title" }, h("h2.sr-only#q-title", t("desk.queue")), board, empty),
    h("section.card", { "aria-labelledby": "in-title" }, h("h2#in-title", t("desk.inbound")),
      h("div.table-wrap", h("table.list", h("thead", h("tr", ["col.number", "col.patient", "col.from", "col.priority", "col.status", "col.schedule"].map((k) => h("th", { scope: "col" }, t(k))))), inbound)),
      inboundEmpty));

  let items = [];
  let greens = null; // green ticket ids on the board, to notice a new one
  let drawnSig = ""; // what the board shows, to leave it alone when nothing changed
  const rows = new Map(); // id → the row's countdown element and deadline

  async function loadQueue() {
    const page = await get(`/referral-queues/${hid}` + qs({ limit: 200 }));
    // The server serves green first already; pin them anyway so the board
    // never depends on a tie-break.
    items = [...page.items].sort((a, b) => (b.green_channel ? 1 : 0) - (a.green_channel ? 1 : 0));
    const nowGreen = new Set(items.filter((x) => x.green_channel).map((x) => x.id));
    const arrived = greens ? [...nowGreen].filter((x) => !greens.has(x)) : [];
    greens = nowGreen;
    // A push often changes nothing this board shows (a re-read after a
    // reconnect, a lease renewed): keep the rows, and with them the focus.
    const sig = items.map((x) => [x.id, x.version, x.leased_by || "", (x.breached || []).join("+")].join(":")).join("|");
    if (sig === drawnSig) { tick(); return; }
    drawnSig = sig;
    const drawn = await Promise.all(items.map(async (it) => {
      let tk = null;
      try { tk = await details(it); } catch { /* gone meanwhile; the next read drops it */ }
      const [dept, from, pt] = await Promise.all([departmentName(hid, it.department_id),
        tk ? hospitalName(tk.referring_hospital_id) : "", tk ? patient(tk.patient_id).catch(() => null) : null]);
      return row(it, tk, dept, from, pt, arrived.includes(it.id));
    }));
    // Keep the keyboard where it was: the same control of the same ticket.
    const active = document.activeElement;
    const activeRow = active && board.contains(active) ? active.closest("li[data-id]") : null;
    const activeKind = active && active.matches("button[data-claim]") ? "button[data-claim]" : "a";
    clear(board).append(...drawn);
    if (activeRow) {
      const again = board.querySelector(`li[data-id="${CSS.escape(activeRow.dataset.id)}"] ${activeKind}`);
      if (again) again.focus();
    }
    empty.hidden = items.length > 0;
    counts.textContent = t("desk.counts", { n: items.length, green: nowGreen.size, breached: items.filter((x) => (x.breached || []).length).length });
    tick();
    if (arrived.length) alertGreen(items.filter((x) => arrived.includes(x.id)));
  }

  function row(it, tk, dept, from, pt, fresh) {
    const leased = !!it.leased_by;
    const mine = it.leased_by === session.user.id;
    const deadline = leased ? it.decide_by : it.claim_by;
    const countdown = h("span.countdown", { "aria-label": t("desk.countdown") });
    const breached = (it.breached || []).length > 0;
    rows.set(it.id, { countdown, deadline, el: null });
    const claim = !leased ? h("button.btn.primary.small", { type: "button", "data-claim": it.id, on: { click: () => claimOne(it) } }, t("action.claim")) : null;
    const li = h("li.ticket-row" + (it.green_channel ? ".green" : "") + (breached ? ".breached" : "") + (fresh ? ".arrived" : "") + (leased ? ".leased" : ""),
      { "data-id": it.id, "data-number": it.number },
      h("div.tr-main",
        h("div.tr-top", h("a.number", { href: `#/referrals/${it.id}` }, it.number), " ", priorityBadge(it), breached ? h("span.badge.breach", t("desk.breached")) : null),
        h("div.tr-body", pt ? h("strong", pt.name) : null, tk ? " · " + diagnosisText(tk) : "", h("div.muted", `${from} → ${dept}`))),
      h("div.tr-time",
        h("div.deadline-label", leased ? t("desk.decide_in") : t("desk.claim_in")), countdown,
        h("div.muted.small", t("desk.waiting_since", { at: timeOnly(it.waiting_since) }))),
      h("div.tr-act",
        leased ? h("span.muted.small", mine ? t("desk.held_by_you") : t("desk.held_by_colleague")) : null,
        leased && mine ? h("a.btn.small", { href: `#/referrals/${it.id}` }, t("desk.continue")) : claim));
    rows.get(it.id).el = li;
    return li;
  }

  async function claimOne(it) {
    try {
      await request("POST", `/referrals/${it.id}/actions/claim`, { body: {}, ifMatch: it.version });
      go(`#/referrals/${it.id}`);
    } catch (err) {
      toast(err instanceof ApiError && (err.status === 409 || err.status === 412) ? t("desk.taken") : err.message, "error");
      background(loadQueue());
    }
  }

  // tick redraws the countdowns once a second.
  function tick() {
    const now = Date.now();
    for (const [, r] of rows) {
      if (!r.deadline || !r.el || !r.el.isConnected) continue;
      const left = (new Date(r.deadline).getTime() - now) / 1000;
      r.countdown.textContent = duration(left);
      r.el.classList.toggle("overdue", left < 0);
      r.el.classList.toggle("soon", left >= 0 && left < 120);
    }
  }
  const ticker = setInterval(tick, 1000);

  function alertGreen(list) {
    const numbers = list.map((x) => x.number).join(", ");
    const cats = list.map((x) => t("green." + (x.green_category || "other_critical"))).join(", ");
    clear(alertBar).append(h("strong", t("desk.green_arrived")), " ", numbers, " · ", cats,
      h("button.btn-link", { type: "button", on: { click: () => { alertBar.hidden = true; } } }, t("desk.dismiss")));
    alertBar.hidden = false;
    alertBar.classList.remove("pulse");
    void alertBar.offsetWidth; // restart the animation
    alertBar.classList.add("pulse");
    alertNow(t("desk.green_arrived") + " " + numbers);
    // Say on the page whether the sound went out (muted, or the browser has
    // no audio), so a check of the board can tell.
    alertBar.dataset.sound = sound ? (beep() ? "played" : "unavailable") : "off";
  }

  async function loadInbound() {
    const statuses = ["accepted", "scheduled", "in_transit", "arrived"];
    const pages = await Promise.all(statuses.map((s) => get("/referrals" + qs({ receiving_hospital_id: hid, status: s, limit: 100 }))));
    const list = pages.flatMap((p) => p.items);
    const trs = await Promise.all(list.map(async (r) => {
      const [pt, from] = await Promise.all([patient(r.patient_id).catch(() => null), hospitalName(r.referring_hospital_id)]);
      return h("tr" + (r.green_channel ? ".is-green" : ""), { "data-id": r.id },
        h("td", h("a", { href: `#/referrals/${r.id}` }, r.number)), h("td", pt ? pt.name : "—"), h("td", from),
        h("td", priorityBadge(r)), h("td", statusBadge(r.status)),
        h("td", r.schedule ? `${r.schedule.slot} · ${dateTime(r.schedule.at)}` : "—"));
    }));
    clear(inbound).append(...trs);
    inboundEmpty.hidden = trs.length > 0;
  }

  let qTimer = null;
  let iTimer = null;
  const reloadQueue = () => { clearTimeout(qTimer); qTimer = setTimeout(() => background(loadQueue()), 60); };
  const reloadInbound = () => { clearTimeout(iTimer); iTimer = setTimeout(() => background(loadInbound()), 200); };

  await Promise.all([loadQueue(), loadInbound()]);
  const onQueue = (ev, name) => {
    if (name === "escalated" && ev) announce(t("desk.escalated", { number: ev.number || "" }));
    reloadQueue();
  };
  const qStream = live(`/api/v1/referral-queues/${hid}/stream`, {
    onState: setLiveState,
    onReady: reloadQueue,
    on: { queued: onQueue, removed: onQueue, claimed: onQueue, escalated: onQueue },
  });
  const rStream = live("/api/v1/referrals/stream", { onReady: reloadInbound, on: { changed: reloadInbound } });
  return () => { clearInterval(ticker); clearTimeout(qTimer); clearTimeout(iTimer); qStream.close(); rStream.close(); };
}
