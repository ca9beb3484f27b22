// The plain home of roles without a clinical screen (administrator,
// auditor): who is signed in, and where the API is described.
import { t } from "../i18n.js";
import { h } from "../ui.js";
import { session } from "../session.js";

export async function render(main) {
  main.append(h("section.card", h("h1", t("home.title")),
    h("p", t("home.signed_in_as", { name: session.user.display_name, roles: session.user.roles.map((r) => t("role." + r)).join(", ") })),
    h("p", t("home.api_hint")), h("p", h("a", { href: "/api/v1/openapi.json" }, "/api/v1/openapi.json"))));
}
