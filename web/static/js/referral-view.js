// Pieces every referral screen shares: badges, the live-state indicator and
// which actions the caller may take on a ticket (the same table as the
// server's state machine; the server still decides each one).
import { t } from "./i18n.js";
import { h } from "./ui.js";
import { session } from "./session.js";

export function statusBadge(status) {
  return h("span.badge.status-" + status, t("status." + status));
}
export function priorityBadge(r) {
  const out = [];
  if (r.green_channel) out.push(h("span.badge.green", { title: t("green.title") }, t("green.short") + (r.green_category ? " · " + t("green." + r.green_category) : "")));
  if (r.priority) out.push(h("span.badge.priority-" + r.priority, t("priority." + r.priority)));
  return out;
}
export function diagnosisText(r) {
  const d = (r.diagnoses || [])[0];
  return d ? `${d.code} ${d.text}` : "";
}

// setLiveState shows whether the screen is receiving pushes.
export function setLiveState(state) {
  const el = document.getElementById("live-state");
  if (!el) return;
  el.hidden = state === "off";
  el.className = "live-state " + state;
  el.textContent = t("live." + state);
}

const referrerRoles = ["county_doctor", "specialist", "referral_desk"];
const desk = ["referral_desk"];
const clinicians = ["referral_desk", "county_doctor", "specialist", "dispatched_doctor"];
const open = ["submitted", "claimed", "info_requested", "accepted", "scheduled", "in_transit"];
const rules = [
  ["submit", ["draft"], "referrer", referrerRoles],
  ["resubmit", ["info_requested"], "referrer", referrerRoles],
  ["claim", ["submitted"], "receiver", desk],
  ["accept", ["claimed"], "receiver", desk, true],
  ["reject", ["claimed"], "receiver", desk, true],
  ["request_info", ["claimed"], "receiver", desk, true],
  ["redirect", ["claimed"], "receiver", desk, true],
  ["release", ["claimed"], "receiver", desk, true],
  ["schedule", ["accepted", "scheduled"], "receiver", desk],
  ["depart", ["scheduled"], "referrer", referrerRoles],
  ["arrive", ["scheduled", "in_transit"], "receiver", desk],
  ["complete", ["arrived"], "receiver", clinicians],
  ["close", ["completed"], "referrer", referrerRoles],
  ["mark_no_show", open, "receiver", desk],
  ["cancel", ["draft", ...open], "both", referrerRoles],
];

export function sideOf(r) {
  const hid = session.user.hospital_id;
  if (hid === r.referring_hospital_id) return "referrer";
  if (hid === r.receiving_hospital_id && r.status !== "draft") return "receiver";
  return "";
}

// allowedActions lists the actions the caller may take now, in the order a
// screen offers them.
export function allowedActions(r) {
  const side = sideOf(r);
  const roles = session.user.roles;
  return rules.filter(([, from, who, rs, holder]) => {
    if (!from.includes(r.status)) return false;
    if (who !== "both" && who !== side) return false;
    if (who === "both" && !side) return false;
    const need = who === "both" && side === "receiver" ? desk : rs;
    if (!need.some((x) => roles.includes(x))) return false;
    if (holder && r.claimed_by !== session.user.id) return false;
    return true;
  }).map(([a]) => a);
}
