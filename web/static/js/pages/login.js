import { request, ApiError } from "../api.js";
import { t } from "../i18n.js";
import { h, field, showErrors, clearErrors } from "../ui.js";
import { adopt, home, go, session } from "../session.js";

export async function render(main) {
  if (session.user) { go(home()); return; }
  const user = h("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "off", spellcheck: "false" });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const banner = h("p.form-error", { role: "alert", hidden: true });
  const submit = h("button.btn.primary.block", { type: "submit" }, t("login.submit"));
  const form = h("form.login-form", { novalidate: true },
    banner,
    field(t("login.username"), user, { name: "username" }),
    field(t("login.password"), pass, { name: "password" }),
    submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      const res = await request("POST", "/auth/login", { body: { username: user.value.trim(), password: pass.value } });
      await adopt(res.body);
      go(home());
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        banner.textContent = t("login.failed");
        banner.hidden = false;
        pass.select();
      } else if (err instanceof ApiError && err.status === 429) {
        banner.textContent = t("login.locked");
        banner.hidden = false;
      } else if (err instanceof ApiError) showErrors(form, err);
      else { banner.textContent = t("error.network"); banner.hidden = false; }
    } finally { submit.disabled = false; }
  });
  main.append(h("section.login",
    h("div.login-intro", h("h1", t("login.title")), h("p", t("login.tagline"))),
    h("div.card.login-card", h("h2", t("login.heading")), form)));
  user.focus();
}
