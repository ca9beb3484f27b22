// Small DOM helpers shared by the pages. Elements are built with h(), never
// from HTML strings, so text from the server is never parsed as markup.
import { t, lang } from "./i18n.js";

// h("tag.class#id", {attrs, on: {event}}, ...children)
export function h(spec, attrs, ...children) {
  if (attrs === null || typeof attrs !== "object" || Array.isArray(attrs) || attrs instanceof Node) {
    if (attrs !== undefined && attrs !== null) children.unshift(attrs);
    attrs = {};
  }
  const m = spec.match(/^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i);
  const el = document.createElement(m[1] || "div");
  for (const part of (m[2] || "").match(/[.#][\w-]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "class") el.className += " " + v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// svg builds an SVG element (charts).
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  append(el, children);
  return el;
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

// ---- time: every date shown in the hospital's time zone ----
let zone = "Asia/Shanghai";
export function setZone(z) { if (z) zone = z; }
export function getZone() { return zone; }

function fmt(opts) { return new Intl.DateTimeFormat(lang() === "en" ? "en-GB" : "zh-CN", { timeZone: zone, hour12: false, ...opts }); }
export function dateTime(iso) {
  if (!iso) return "";
  return fmt({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}
export function timeOnly(iso) {
  if (!iso) return "";
  return fmt({ hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(iso));
}
export function dayISO(d) { // YYYY-MM-DD of an instant in the zone
  const p = Object.fromEntries(fmt({ year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(d).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}`;
}
// localInput converts between an instant and a datetime-local value in the zone.
export function toLocalInput(d) {
  const p = Object.fromEntries(fmt({ year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" }).formatToParts(d).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}T${p.hour === "24" ? "00" : p.hour}:${p.minute}`;
}
export function fromLocalInput(v) {
  if (!v) return null;
  // Find the zone's offset at that wall-clock time by probing.
  const guess = new Date(v + ":00Z");
  const shown = new Date(toLocalInput(guess) + ":00Z");
  return new Date(guess.getTime() - (shown.getTime() - guess.getTime())).toISOString();
}
export function duration(seconds) {
  const neg = seconds < 0;
  let s = Math.abs(Math.round(seconds));
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  const body = hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${String(s).padStart(2, "0")}` : `${mm}:${String(s).padStart(2, "0")}`;
  return (neg ? "−" : "") + body;
}
export function humanSeconds(s) {
  if (s === null || s === undefined) return "—";
  if (s < 90) return t("unit.seconds", { n: Math.round(s) });
  if (s < 5400) return t("unit.minutes", { n: Math.round(s / 60) });
  return t("unit.hours", { n: (s / 3600).toFixed(1) });
}

// ---- announcements ----
export function announce(msg) {
  const a = document.getElementById("announcer");
  a.textContent = "";
  setTimeout(() => { a.textContent = msg; }, 30);
}
export function alertNow(msg) {
  const a = document.getElementById("alerter");
  a.textContent = "";
  setTimeout(() => { a.textContent = msg; }, 30);
}
export function toast(msg, kind = "info") {
  const box = document.getElementById("toasts");
  const el = h("div.toast." + kind, msg);
  box.append(el);
  while (box.children.length > 3) box.firstChild.remove();
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

// ---- forms ----
// field builds a labelled control with a slot for its error. name is the
// server's field name, so an API error lands next to the right control.
let seq = 0;
export function field(labelText, control, { name, hint, wide } = {}) {
  const id = control.id || `f${++seq}`;
  control.id = id;
  if (name) control.dataset.field = name;
  const err = h("p.field-error", { id: id + "-err", "aria-live": "polite" });
  const hintEl = hint ? h("p.hint", { id: id + "-hint" }, hint) : null;
  control.setAttribute("aria-describedby", [hintEl && hintEl.id, err.id].filter(Boolean).join(" "));
  return h("div.field" + (wide ? ".wide" : ""), { "data-for": name || "" }, h("label", { for: id }, labelText), control, hintEl, err);
}

export function select(options, value, attrs = {}) {
  return h("select", attrs, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

// showErrors puts each field error of err next to its control (matching the
// server's name exactly, then its parent: "diagnoses[0].code" → "diagnoses"),
// focuses the first, and returns the messages no control claimed.
export function showErrors(form, err) {
  clearErrors(form);
  const rest = [];
  let first = null;
  for (const [name, msg] of Object.entries(err.fields || {})) {
    const slot = slotFor(form, name);
    if (!slot) { rest.push(`${name}: ${msg}`); continue; }
    slot.setAttribute("aria-invalid", "true");
    const wrap = slot.closest(".field");
    const errEl = wrap && wrap.querySelector(".field-error");
    if (errEl) errEl.textContent = (errEl.textContent ? errEl.textContent + "; " : "") + localiseMessage(msg);
    if (!first) first = slot;
  }
  if (first) first.focus();
  const banner = form.querySelector(".form-error");
  if (banner) {
    const lines = rest.length ? rest : (Object.keys(err.fields || {}).length ? [] : [err.message]);
    banner.textContent = lines.length ? lines.join("\n") : t("form.fix_fields");
    banner.hidden = false;
  }
  return rest;
}
function slotFor(form, name) {
  for (let n = name; n;) {
    const el = form.querySelector(`[data-field="${CSS.escape(n)}"]`);
    if (el) return el;
    const parent = n.replace(/(\.[^.[\]]+|\[\d+\])$/, "");
    if (parent === n) return null;
    n = parent;
  }
  return null;
}
export function clearErrors(form) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  const banner = form.querySelector(".form-error");
  if (banner) { banner.textContent = ""; banner.hidden = true; }
}
// The server writes field messages in English; the ones users meet on these
// forms read in their language. Anything else is shown as the server says.
const serverMessages = [
  [/^is required/, "err.required"],
  [/^needs at least one diagnosis/, "err.needs_diagnosis"],
  [/^must be an ICD-10 code/, "err.icd10"],
  [/check character/, "err.national_id_check"],
  [/^must not be in the future/, "err.not_future"],
  [/^must not be in the past/, "err.not_past"],
  [/^must be urgent or emergency for a green-channel referral/, "err.green_priority"],
  [/^must be ambulance for a grade I transfer risk/, "err.grade1_ambulance"],
  [/^must be doctor for a grade I transfer risk/, "err.grade1_doctor"],
  [/^must be after from/, "err.after_from"],
  [/^is listed twice/, "err.twice"],
  [/^must be a phone number/, "err.phone"],
];
function localiseMessage(msg) {
  if (lang() === "en") return msg;
  for (const [re, key] of serverMessages) if (re.test(msg)) return t(key);
  return msg;
}

// ---- dialogs ----
// dialog opens a modal <dialog> with a form; onSubmit gets the form and may
// throw an ApiError, which is shown on the form. Resolves when closed.
export function dialog(title, body, { submitLabel, onSubmit, danger } = {}) {
  return new Promise((resolve) => {
    const banner = h("p.form-error", { role: "alert", hidden: true });
    const submit = h("button.btn" + (danger ? ".danger" : ".primary"), { type: "submit" }, submitLabel || t("action.confirm"));
    const cancel = h("button.btn", { type: "button", value: "cancel" }, t("action.cancel"));
    const form = h("form.dialog-form", { method: "dialog", novalidate: true }, h("h2", title), banner, body, h("div.actions", cancel, submit));
    const dlg = h("dialog.modal", { "aria-label": title }, form);
    cancel.addEventListener("click", () => dlg.close());
    dlg.addEventListener("close", () => { dlg.remove(); resolve(dlg.returnValue === "ok"); });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      submit.disabled = true;
      try {
        if (onSubmit) await onSubmit(form);
        dlg.close("ok");
      } catch (err) {
        if (err && err.fields) showErrors(form, err);
        else { banner.textContent = String(err.message || err); banner.hidden = false; }
      } finally { submit.disabled = false; }
    });
    document.body.append(dlg);
    dlg.showModal();
    const focusable = form.querySelector("input, select, textarea");
    (focusable || submit).focus();
  });
}

// ---- sound: a short two-tone beep, generated, no file ----
let audio = null;
export function beep() {
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") audio.resume();
    const now = audio.currentTime;
    for (const [i, f] of [[0, 880], [1, 1175]]) {
      const o = audio.createOscillator();
      const g = audio.createGain();
      o.type = "sine";
      o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, now + i * 0.22);
      g.gain.exponentialRampToValueAtTime(0.25, now + i * 0.22 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.22 + 0.2);
      o.connect(g).connect(audio.destination);
      o.start(now + i * 0.22);
      o.stop(now + i * 0.22 + 0.21);
    }
    return audio.state !== "closed";
  } catch { return false; }
}
// A browser starts audio only after a user gesture; any click unlocks it.
export function unlockAudio() {
  const fn = () => { try { audio = audio || new (window.AudioContext || window.webkitAudioContext)(); audio.resume(); } catch { /* no audio */ } };
  document.addEventListener("pointerdown", fn, { once: true });
  document.addEventListener("keydown", fn, { once: true });
}
