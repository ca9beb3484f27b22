// The script of test.html, in a file of its own: the server's Content
// Security Policy runs no inline script.
import { mountRoom } from "./room.js";

const q = new URLSearchParams(location.search);
let csrf = "";
// The tiny API client the shell will provide: session cookie plus the CSRF
// token from /auth/me; errors are problem+json.
const api = {
  async call(method, path, body) {
    const r = await fetch(path, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", ...(csrf ? { "X-CSRF-Token": csrf } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    const out = text ? JSON.parse(text) : null;
    if (!r.ok) throw Object.assign(new Error(out?.detail || out?.title || r.statusText), { status: r.status, problem: out });
    return out;
  },
  get(path) { return this.call("GET", path); },
  post(path, body) { return this.call("POST", path, body); },
};
window.duikouLog = [];
const log = (kind, msg) => window.duikouLog.push(`${new Date().toISOString()} ${kind} ${msg}`);

async function me() {
  const r = await fetch("/api/v1/auth/me", { credentials: "same-origin" });
  if (!r.ok) return false;
  csrf = (await r.json()).csrf_token || "";
  return true;
}

async function start() {
  document.getElementById("login").hidden = true;
  window.room = mountRoom(document.getElementById("room"), {
    sessionId: q.get("session"), api, lang: q.get("lang") || "zh-CN", log, skipCheck: q.has("skipcheck"),
  });
}

document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: document.getElementById("u").value, password: document.getElementById("p").value }),
  });
  if (!r.ok) {
    const p = await r.json();
    document.getElementById("login-error").textContent = p.detail || p.title;
    return;
  }
  await me();
  start();
});

if (await me()) start();
else document.getElementById("login").hidden = false;
