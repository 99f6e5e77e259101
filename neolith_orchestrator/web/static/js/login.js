// The login form: e-mail and password; Enter submits (it is a real form).
import { api, session } from "./api.js";
import { h } from "./dom.js";

export function renderLogin(root, { notice, onLoggedIn }) {
  const error = h("p", { class: "error", id: "login-error", role: "alert" }, notice ?? "");
  const email = h("input", {
    id: "login-email", name: "email", type: "email", autocomplete: "username", required: true,
    "aria-describedby": "login-error",
  });
  const password = h("input", {
    id: "login-password", name: "password", type: "password",
    autocomplete: "current-password", required: true, "aria-describedby": "login-error",
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");

  async function onsubmit(event) {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    submit.textContent = "Logging in…";
    try {
      const result = await api("/api/auth/login", {
        method: "POST",
        body: { email: email.value.trim(), password: password.value },
      });
      session.token = result.token;
      session.user = result.user;
      password.value = "";
      onLoggedIn(result.user);
    } catch (exc) {
      error.textContent = exc.message;
      submit.disabled = false;
      submit.textContent = "Log in";
      password.focus();
    }
  }

  const form = h(
    "form", { class: "login-form", onsubmit, "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in to Neolith"),
    h("label", { for: "login-email" }, "Email"), email,
    h("label", { for: "login-password" }, "Password"), password,
    error, submit,
  );
  root.replaceChildren(h("main", { id: "main", class: "login-page" }, form));
  email.focus();
}
