// The app shell: session, navigation per role, the hash router, language.
import { post, onUnauthorized, clearCache, abortAll, aborted } from "./api.js";
import { session, has, home, restore, clinical } from "./session.js";
import { t, lang, setLang, applyStatic } from "./i18n.js";
import { h, clear, unlockAudio } from "./ui.js";
import { forgetNames } from "./names.js";
import * as login from "./pages/login.js";
import * as doctor from "./pages/doctor.js";
import * as form from "./pages/referral-form.js";
import * as ticket from "./pages/ticket.js";
import * as desk from "./pages/desk.js";
import * as office from "./pages/office.js";
import * as program from "./pages/program.js";
import * as later from "./pages/later.js";
import * as sessions from "./pages/sessions.js";
import * as sessionView from "./pages/session-view.js";
import * as sessionForm from "./pages/session-form.js";
import * as clinic from "./pages/clinic.js";
import * as room from "./pages/room.js";

// Routes: a pattern of the hash path, the page module, and who may open it.
const routes = [
  { path: /^\/login$/, page: login, public: true },
  { path: /^\/doctor$/, page: doctor, roles: clinical },
  { path: /^\/referrals\/new$/, page: form, roles: clinical },
  { path: /^\/referrals\/([\w-]+)$/, page: ticket, roles: clinical },
  { path: /^\/desk$/, page: desk, roles: ["referral_desk"] },
  { path: /^\/office$/, page: office, roles: ["program_office", ...clinical] },
  { path: /^\/program$/, page: program, roles: ["program_office"] },
  { path: /^\/sessions$/, page: sessions, roles: clinical },
  { path: /^\/sessions\/new$/, page: sessionForm, roles: ["county_doctor", "specialist", "dispatched_doctor"] },
  { path: /^\/sessions\/([\w-]+)$/, page: sessionView, roles: clinical },
  { path: /^\/sessions\/([\w-]+)\/room$/, page: room, roles: clinical },
  { path: /^\/sessions\/([\w-]+)\/imaging$/, page: room, roles: clinical }, // the viewer is inside the room
  { path: /^\/clinic$/, page: clinic, roles: clinical },
  { path: /^\/clinic\/([\w-]+)\/book$/, page: { render: sessionForm.renderBooking }, roles: ["county_doctor", "specialist", "dispatched_doctor"] },
  { path: /^\/home$/, page: later, roles: null },
];

function navItems() {
  const items = [];
  if (has("referral_desk")) items.push(["#/desk", "nav.board"]);
  if (has(...clinical)) items.push(["#/doctor", has("county_doctor") ? "nav.my_referrals" : "nav.referrals"]);
  // A supporting (tertiary) hospital refers patients down, a county one up.
  const down = session.hospital && session.hospital.tier === "tertiary";
  if (has(...clinical)) items.push([down ? "#/referrals/new?direction=down" : "#/referrals/new", down ? "nav.new_down_referral" : "nav.new_referral"]);
  if (has(...clinical)) items.push(["#/sessions", has("specialist") && !has("county_doctor") ? "nav.incoming_sessions" : "nav.sessions"]);
  if (has("county_doctor", "specialist", "dispatched_doctor")) items.push(["#/clinic", "nav.clinic"]);
  if (has("program_office", "referral_desk")) items.push(["#/office", "nav.statistics"]);
  if (has("program_office")) items.push(["#/program", "nav.program"]);
  return items;
}

function renderChrome() {
  applyStatic();
  const nav = clear(document.getElementById("nav"));
  const who = document.getElementById("who");
  const out = document.getElementById("logout");
  if (!session.user) { who.textContent = ""; out.hidden = true; return; }
  const here = location.hash;
  nav.append(h("ul", navItems().map(([href, key]) => h("li", h("a", { href, "aria-current": here === href ? "page" : null }, t(key))))));
  who.textContent = `${session.user.display_name} · ${session.hospital ? session.hospital.name : ""}`;
  out.hidden = false;
}

let current = null; // the mounted page's cleanup

async function route() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  const params = new URLSearchParams(query || "");
  if (!session.user && path !== "/login") {
    if (!(await restore())) { location.replace("#/login"); return; }
  }
  if (path === "/" || path === "") { location.replace(session.user ? home() : "#/login"); return; }
  const r = routes.find((x) => x.path.test(path));
  const main = document.getElementById("main");
  if (current) { try { current(); } catch { /* the old page is gone anyway */ } current = null; }
  clear(main);
  renderChrome();
  if (!r) { main.append(h("section.card", h("h1", t("page.not_found")))); return; }
  if (r.roles && !has(...r.roles)) { main.append(h("section.card", h("h1", t("page.not_allowed")))); return; }
  const args = path.match(r.path).slice(1);
  try {
    const cleanup = await r.page.render(main, { args, params, path });
    current = typeof cleanup === "function" ? cleanup : null;
  } catch (err) {
    if (aborted(err)) return; // signed out while the page was loading
    main.append(h("section.card", h("h1", t("page.failed")), h("p", String(err.message || err))));
    console.error(err);
  }
  document.title = `${t("app.name")} · ${main.querySelector("h1") ? main.querySelector("h1").textContent : ""}`;
  // A new page starts reading at its top, unless it put the focus on a field.
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

async function logout() {
  // Close the page's live streams first, so none reconnects without a session.
  if (current) { try { current(); } catch { /* gone anyway */ } current = null; }
  abortAll(); // and its requests still in flight
  try { await post("/auth/logout"); } catch { /* the session may be gone already */ }
  session.user = null;
  clearCache();
  forgetNames(); // no patient of this session stays in memory for the next
  location.hash = "#/login";
}


onUnauthorized(() => {
  if (!session.user) return;
  session.user = null;
  clearCache();
  forgetNames();
  forgetNames(); // no patient of this session stays in memory for the next
  location.hash = "#/login";
});

document.getElementById("logout").addEventListener("click", logout);
const langSel = document.getElementById("lang");
langSel.value = lang();
langSel.addEventListener("change", () => { setLang(langSel.value); route(); });
window.addEventListener("hashchange", route);
unlockAudio();
route();
