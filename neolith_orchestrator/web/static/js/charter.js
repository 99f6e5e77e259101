// The orchestrator forms: create one (account + charter) and edit a charter. The checks
// mirror the API's rules (accounts.create_user, ai.charter.Charter) so mistakes show at
// once, field by field; the server's answer is still shown, mapped to its field.
import { api } from "./api.js";
import { h } from "./dom.js";

const PASSWORD_MIN = 8;
const HANDLE = /^[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9_])?$/;
const TEXT_FIELDS = [
  // [key, label, max, multiline, required]
  ["name", "Charter name", 100, false, true],
  ["role", "Role", 200, false, false],
  ["discipline", "Discipline", 200, false, false],
  ["mission", "Mission", 2000, true, false],
  ["personality", "Personality", 1000, true, false],
];
const LIST_FIELDS = [["instructions", "Instructions (one per line)"], ["capabilities", "Capabilities (one per line)"]];
const ACCOUNT_FIELDS = [
  ["email", "Email", "email", "username"],
  ["account_name", "Display name", "text", "off"],
  ["handle", "Handle (optional)", "text", "off"],
  ["password", "Password", "password", "new-password"],
];

function field(prefix, key, label, control, hint) {
  const id = `${prefix}-${key}`;
  control.id = id;
  control.name = key;
  const error = h("p", { class: "field-error", id: `${id}-error` });
  control.setAttribute("aria-describedby", `${id}-error${hint ? ` ${id}-hint` : ""}`);
  return h("div", { class: "field", dataset: { field: key } },
    h("label", { for: id }, label), control,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null, error);
}

export class CharterForm {
  /** `orchestrator` null: a create form; otherwise edit that orchestrator's charter. */
  constructor({ orchestrator, onDone, onCancel }) {
    this.orchestrator = orchestrator;
    this.original = orchestrator?.charter ?? {};
    this.onDone = onDone;
    this.prefix = orchestrator ? "edit" : "create";
    this.controls = {};
    const parts = [];
    if (!orchestrator) {
      for (const [key, label, type, autocomplete] of ACCOUNT_FIELDS) {
        const input = h("input", { type, autocomplete });
        this.controls[key] = input;
        parts.push(field(this.prefix, key, label, input,
          key === "password" ? `At least ${PASSWORD_MIN} characters.` : null));
      }
    }
    const charterParts = [];
    for (const [key, label, max, multiline] of TEXT_FIELDS) {
      const control = multiline ? h("textarea", { rows: "3" }) : h("input", { type: "text" });
      control.value = this.original[key] ?? "";
      this.controls[key] = control;
      charterParts.push(field(this.prefix, key, label, control, `At most ${max} characters.`));
    }
    for (const [key, label] of LIST_FIELDS) {
      const control = h("textarea", { rows: "3" });
      const value = this.original[key] ?? [];
      control.value = Array.isArray(value) ? value.join("\n") : String(value);
      this.controls[key] = control;
      charterParts.push(field(this.prefix, key, label, control, "Up to 50 lines."));
    }
    const ms = this.original.model_settings ?? {};
    this.controls.model = h("input", { type: "text", value: ms.model ?? "" });
    this.controls.max_tokens = h("input", { type: "number", min: "1", max: "8192",
      inputmode: "numeric", value: ms.max_tokens ?? "" });
    charterParts.push(field(this.prefix, "model", "Model (optional)", this.controls.model));
    charterParts.push(field(this.prefix, "max_tokens", "Max tokens (optional)", this.controls.max_tokens, "1 to 8192."));
    for (const [key, control] of Object.entries(this.controls)) {
      // An edited field's old complaint goes; the next submit checks it again.
      control.addEventListener("input", () => {
        control.setAttribute("aria-invalid", "false");
        this.el.querySelector(`#${this.prefix}-${key}-error`).textContent = "";
      });
    }
    this.status = h("p", { class: "form-status", role: "alert" });
    const title = orchestrator ? `Charter of ${orchestrator.user.name}` : "New orchestrator";
    this.el = h("form", { class: "charter-form", novalidate: true,
      onsubmit: (e) => { e.preventDefault(); this.submit(); } },
    h("h3", {}, title),
    parts,
    h("fieldset", {}, h("legend", {}, "Charter"), charterParts),
    this.status,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary" }, orchestrator ? "Save charter" : "Create orchestrator"),
      onCancel ? h("button", { type: "button", class: "quiet", onclick: onCancel }, "Cancel") : null));
  }

  value(key) {
    return this.controls[key].value.trim();
  }

  /** {charter, account, errors}: the same rules the API applies. */
  collect() {
    const errors = {};
    const charter = { ...this.original };
    for (const [key, , max, , required] of TEXT_FIELDS) {
      const v = this.value(key);
      if (required && !v) errors[key] = "Required.";
      else if (v.length > max) errors[key] = `At most ${max} characters (now ${v.length}).`;
      charter[key] = v;
    }
    for (const [key] of LIST_FIELDS) {
      const items = this.controls[key].value.split("\n").map((s) => s.trim()).filter(Boolean);
      if (items.length > 50) errors[key] = `At most 50 lines (now ${items.length}).`;
      const long = items.findIndex((s) => s.length > 1000);
      if (long >= 0) errors[key] = `Line ${long + 1} is longer than 1000 characters.`;
      charter[key] = items;
    }
    const model = this.value("model");
    if (model.length > 100) errors.model = "At most 100 characters.";
    const rawTokens = this.value("max_tokens");
    const tokens = rawTokens === "" ? null : Number(rawTokens);
    if (tokens !== null && !(Number.isInteger(tokens) && tokens >= 1 && tokens <= 8192)) {
      errors.max_tokens = "A whole number from 1 to 8192.";
    }
    charter.model_settings = { ...(this.original.model_settings ?? {}), model: model || null, max_tokens: tokens };
    let account = null;
    if (!this.orchestrator) {
      account = {
        email: this.value("email"), name: this.value("account_name"),
        password: this.controls.password.value, handle: this.value("handle").toLowerCase() || null,
      };
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(account.email)) errors.email = "Enter an email address.";
      if (!account.name || account.name.length > 200) errors.account_name = "1 to 200 characters.";
      if (account.password.length < PASSWORD_MIN) errors.password = `At least ${PASSWORD_MIN} characters.`;
      if (account.handle && !HANDLE.test(account.handle.replace(/^@/, ""))) {
        errors.handle = "Letters, digits, '_', '.', '-' (at most 64).";
      }
    }
    return { charter, account, errors };
  }

  showErrors(errors, message = "") {
    for (const [key, control] of Object.entries(this.controls)) {
      const text = errors[key] ?? "";
      control.setAttribute("aria-invalid", text ? "true" : "false");
      this.el.querySelector(`#${this.prefix}-${key}-error`).textContent = text;
    }
    this.status.textContent = message;
    const first = Object.keys(this.controls).find((key) => errors[key]); // in page order
    if (first) this.controls[first].focus();
  }

  /** "invalid charter: role: too long; mission: …" or "email: not valid" → per field. */
  serverErrors(message) {
    const errors = {};
    const inCharter = message.startsWith("invalid charter:");
    for (const part of message.replace(/^invalid charter:\s*/, "").split("; ")) {
      const m = /^([\w.]+):\s*(.*)$/.exec(part);
      if (!m) continue;
      let key = m[1].replace(/^charter\./, "").split(".")[0];
      if (key === "model_settings") key = m[1].split(".").pop();
      if (!inCharter && !m[1].startsWith("charter") && key === "name") key = "account_name";
      if (key in this.controls) errors[key] = m[2];
    }
    return errors;
  }

  async submit() {
    const { charter, account, errors } = this.collect();
    if (Object.keys(errors).length) return this.showErrors(errors, "Please fix the marked fields.");
    this.showErrors({}, "Saving…");
    try {
      const result = this.orchestrator
        ? await api(`/api/admin/orchestrators/${this.orchestrator.id}/charter`, { method: "PUT", body: charter })
        : await api("/api/admin/orchestrators", { method: "POST", body: { ...account, charter } });
      this.showErrors({}, this.orchestrator ? "Charter saved." : `Created @${result.user.handle}.`);
      this.onDone?.(result);
    } catch (exc) {
      const fieldErrors = this.serverErrors(exc.message);
      this.showErrors(fieldErrors, exc.message);
    }
  }
}
