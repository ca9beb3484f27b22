// The API client: JSON in and out, problem+json errors mapped to fields,
// the CSRF header on unsafe requests, If-Match versions, Idempotency-Key on
// creating POSTs, and a 401 sending the user back to the login page.

const state = { csrf: "", onUnauthorized: () => {} };

export function setCSRF(token) { state.csrf = token || ""; }

// Every request of a signed-in session can be called off at once: signing
// out aborts what the page still has in flight, so no answer of the old
// session arrives (as a 401) after it ended.
let inFlight = new AbortController();
export function abortAll() {
  inFlight.abort();
  inFlight = new AbortController();
}
export const aborted = (err) => err && err.name === "AbortError";
export function onUnauthorized(fn) { state.onUnauthorized = fn; }

// ApiError is a refused request. fields maps a field name as the server
// names it ("diagnoses[0].code", "transport.mode") to its message.
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.fields = {};
    for (const e of this.problem.errors || []) this.fields[e.field] = e.message;
  }
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// request sends one call. Options: body (JSON), raw (a Blob/File sent as
// is, with its type), ifMatch (a version number), idempotent (send a fresh
// Idempotency-Key, or the given string to retry with the same one),
// headers, signal. It resolves to {status, body, etag, headers}.
export async function request(method, path, opts = {}) {
  const headers = { Accept: "application/json", ...(opts.headers || {}) };
  let body;
  if (opts.raw) {
    body = opts.raw;
    headers["Content-Type"] = opts.raw.type || "application/octet-stream";
  } else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["Content-Type"] = "application/json";
  }
  if (!["GET", "HEAD"].includes(method)) headers["X-CSRF-Token"] = state.csrf;
  if (opts.ifMatch) headers["If-Match"] = `"${opts.ifMatch}"`;
  if (opts.idempotent) headers["Idempotency-Key"] = typeof opts.idempotent === "string" ? opts.idempotent : newKey();
  const signal = opts.signal ? AbortSignal.any([inFlight.signal, opts.signal]) : inFlight.signal;
  const res = await fetch("/api/v1" + path, { method, headers, body, credentials: "same-origin", signal });
  let data = null;
  const ctype = res.headers.get("Content-Type") || "";
  if (res.status !== 204 && (ctype.includes("json"))) data = await res.json();
  if (res.status === 401 && path !== "/auth/login" && path !== "/auth/me") state.onUnauthorized();
  if (!res.ok) throw new ApiError(res.status, data);
  return { status: res.status, body: data, etag: res.headers.get("ETag"), headers: res.headers };
}

export const get = async (path, opts) => (await request("GET", path, opts)).body;
export const post = async (path, body, opts = {}) => (await request("POST", path, { ...opts, body })).body;
export const put = async (path, body, opts = {}) => (await request("PUT", path, { ...opts, body })).body;

// qs builds a query string from the set values of an object.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, v);
  const s = u.toString();
  return s ? "?" + s : "";
}

// upload sends a file as the raw body with its name in Content-Disposition.
export async function upload(file, patientID) {
  const name = encodeURIComponent(file.name).replace(/['()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
  const res = await request("POST", "/attachments" + qs({ patient_id: patientID }), {
    raw: file, idempotent: true, headers: { "Content-Disposition": `attachment; filename*=UTF-8''${name}` },
  });
  return res.body;
}

// cached memoises reads that do not change while the page is open
// (hospitals, departments) for the life of the session.
const cache = new Map();
export function cached(path) {
  if (!cache.has(path)) cache.set(path, get(path).catch((e) => { cache.delete(path); throw e; }));
  return cache.get(path);
}
export function clearCache() { cache.clear(); }

// background runs a re-read nobody waits for (after a push). Its failure is
// logged, except a lost session: that already sent the user to log in, as
// when a push's re-read overlaps signing out.
export function background(promise) {
  return promise.catch((err) => {
    if ((err instanceof ApiError && err.status === 401) || aborted(err)) return;
    console.error(err);
  });
}
