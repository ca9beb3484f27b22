// Pages reserved for the remote-session work (requests, the specialist's
// list, the video room, the imaging viewer) and the plain home of roles
// without a clinical screen. They say what is coming, nothing more.
import { t } from "../i18n.js";
import { h } from "../ui.js";
import { session } from "../session.js";

export async function render(main, { path }) {
  if (path === "/home") {
    main.append(h("section.card", h("h1", t("home.title")),
      h("p", t("home.signed_in_as", { name: session.user.display_name, roles: session.user.roles.map((r) => t("role." + r)).join(", ") })),
      h("p", t("home.api_hint")), h("p", h("a", { href: "/api/v1/openapi.json" }, "/api/v1/openapi.json"))));
    return;
  }
  main.append(h("section.card.placeholder",
    h("h1", t("sessions.title")),
    h("p", t("sessions.coming")),
    h("ul.plain", h("li", t("sessions.kind.consult")), h("li", t("sessions.kind.teaching")), h("li", t("sessions.kind.imaging")), h("li", t("sessions.kind.clinic"))),
    h("p.muted", t("sessions.empty"))));
}
