// The video room of a session, mounted from web/static/room (its own
// catalogue and stylesheet) with an adapter over api.js, so its calls carry
// the CSRF token and a lost login sends the user back to sign in.
import { get, post } from "../api.js";
import { t, lang } from "../i18n.js";
import { h, getZone } from "../ui.js";
import { mountRoom } from "/room/room.js";

// The room names full paths (/api/v1/…); api.js adds the prefix itself.
const strip = (p) => p.replace(/^\/api\/v1/, "");

function roomStyles() {
  if (document.querySelector('link[data-room-css]')) return;
  document.head.append(h("link", { rel: "stylesheet", href: "/room/room.css", "data-room-css": "" }));
}

export async function render(main, { args, path }) {
  const id = args[0];
  // The imaging viewer lives inside the room.
  if (path.endsWith("/imaging")) { location.replace(`#/sessions/${id}/room`); return; }
  roomStyles();
  const host = h("div.room-host");
  main.append(h("div.page-head", h("h1", t("roompage.title")), h("a.btn", { href: `#/sessions/${id}` }, t("roompage.back"))), host);
  const room = mountRoom(host, {
    sessionId: id, lang: lang(), timeZone: getZone(),
    api: { get: (p) => get(strip(p)), post: (p, body) => post(strip(p), body === undefined ? {} : body) },
  });
  return () => room.destroy();
}
