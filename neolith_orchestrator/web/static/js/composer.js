// The composer: Enter sends, Shift+Enter adds a line, "@" offers the channel's
// orchestrators (a combobox: arrows move, Enter or Tab picks, Escape closes). Every message
// carries a client_id made once per message, so re-sending it never stores it twice.
import { api } from "./api.js";
import { h, newId } from "./dom.js";

const TRIGGER = /(^|[^\w@.+-])@([a-z0-9_.-]*)$/i;

export class Composer {
  constructor({ channelName, realtime, channelId, onSent }) {
    this.realtime = realtime;
    this.channelId = channelId;
    this.onSent = onSent;
    this.candidates = [];
    this.options = [];
    this.active = -1;
    this.pending = new Map(); // client_id -> {content, el}
    this.input = h("textarea", {
      id: "composer-input", rows: "2", role: "combobox", "aria-autocomplete": "list",
      "aria-expanded": "false", "aria-controls": "mention-list",
      "aria-describedby": "composer-hint composer-error",
      placeholder: `Message #${channelName}`,
      onkeydown: (e) => this.keydown(e),
      oninput: () => this.suggest(),
      onclick: () => this.suggest(),
      onblur: () => setTimeout(() => this.close(), 150),
    });
    this.listbox = h("ul", { id: "mention-list", role: "listbox", class: "mentions",
      "aria-label": "Orchestrators", hidden: true });
    this.error = h("p", { id: "composer-error", class: "error", role: "alert" });
    this.sendButton = h("button", { type: "submit", class: "primary" }, "Send");
    this.el = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      h("label", { for: "composer-input", class: "visually-hidden" }, `Message #${channelName}`),
      h("div", { class: "composer-row" },
        h("div", { class: "composer-box" }, this.input, this.listbox), this.sendButton),
      h("p", { id: "composer-hint", class: "hint" },
        "Enter sends · Shift+Enter for a new line · @ to mention an orchestrator"),
      this.error);
  }

  setCandidates(users) {
    this.candidates = users.filter((u) => u.is_orchestrator);
    if (document.activeElement === this.input) this.suggest(); // typed before they loaded
  }

  keydown(event) {
    const open = !this.listbox.hidden;
    if (open && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.highlight((this.active + step + this.options.length) % this.options.length);
    } else if (open && (event.key === "Enter" || event.key === "Tab") && this.active >= 0) {
      event.preventDefault();
      this.pick(this.options[this.active]);
    } else if (open && event.key === "Escape") {
      event.preventDefault();
      this.close();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    }
  }

  suggest() {
    const caret = this.input.selectionStart;
    const match = TRIGGER.exec(this.input.value.slice(0, caret));
    if (!match) return this.close();
    const query = match[2].toLowerCase();
    this.options = this.candidates
      .filter((u) => u.handle.startsWith(query) || u.name.toLowerCase().startsWith(query))
      .slice(0, 8);
    if (!this.options.length) return this.close();
    this.listbox.replaceChildren(...this.options.map((user, i) =>
      h("li", { id: `mention-option-${i}`, role: "option", "aria-selected": "false",
        onmousedown: (e) => { e.preventDefault(); this.pick(user); } },
      h("span", { class: "handle" }, `@${user.handle}`), " ", h("span", { class: "name" }, user.name))));
    this.listbox.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.highlight(0);
  }

  highlight(index) {
    this.active = index;
    this.listbox.querySelectorAll("[role=option]").forEach((li, i) =>
      li.setAttribute("aria-selected", String(i === index)));
    this.input.setAttribute("aria-activedescendant", `mention-option-${index}`);
  }

  pick(user) {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret).replace(/@[a-z0-9_.-]*$/i, `@${user.handle} `);
    this.input.value = before + this.input.value.slice(caret);
    this.input.setSelectionRange(before.length, before.length);
    this.close();
    this.input.focus();
  }

  close() {
    this.listbox.hidden = true;
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  submit() {
    const content = this.input.value;
    if (!content.trim()) return;
    this.error.textContent = "";
    this.input.value = "";
    this.close();
    const clientId = newId();
    const el = h("li", { class: "message pending" },
      h("div", { class: "message-head" }, h("span", { class: "author" }, "You"),
        h("span", { class: "state" }, "sending…")),
      h("p", { class: "content" }, content));
    this.pending.set(clientId, { content, el });
    el.ownerDocument.querySelector(".message-list .empty")?.remove();
    this.onPending?.(el);
    this.deliver(clientId);
  }

  async deliver(clientId) {
    const item = this.pending.get(clientId);
    if (!item || item.inFlight) return;
    item.inFlight = true;
    const state = item.el.querySelector(".state");
    state.replaceChildren("sending…");
    item.el.classList.remove("failed");
    const payload = { channel_id: this.channelId, content: item.content, client_id: clientId };
    try {
      const ack = this.realtime.state === "online"
        ? await this.realtime.send(payload)
        : { ok: true, message: await api(`/api/channels/${this.channelId}/messages`,
          { method: "POST", body: { content: item.content, client_id: clientId } }) };
      if (!ack.ok) {
        // Refused (too long, not a member…): retrying cannot help; give the text back.
        this.pending.delete(clientId);
        item.el.remove();
        this.error.textContent = ack.error?.message ?? "The message was refused.";
        if (!this.input.value) this.input.value = item.content;
        return;
      }
      this.pending.delete(clientId);
      item.el.remove();
      this.onSent(ack.message);
    } catch (exc) {
      if (exc.status && exc.status < 500 && exc.status !== 429) {
        this.pending.delete(clientId);
        item.el.remove();
        this.error.textContent = exc.message;
        if (!this.input.value) this.input.value = item.content;
        return;
      }
      item.el.classList.add("failed");
      state.replaceChildren("not sent ",
        h("button", { type: "button", class: "quiet", onclick: () => this.deliver(clientId) },
          "Retry"));
    } finally {
      item.inFlight = false;
    }
  }

  /** Our own message arrived as `message:new` (often before its ack): drop its
   *  "sending…" copy, so it never shows twice. */
  settle(message) {
    for (const [clientId, item] of this.pending) {
      const echoed = message.metadata?.client_id ?? message.client_id;
      if (echoed ? echoed === clientId : item.content === message.content) {
        this.pending.delete(clientId);
        item.el.remove();
        return;
      }
    }
  }

  /** After a reconnect: re-send whatever is still unacknowledged (same client_id). */
  resendPending() {
    for (const clientId of this.pending.keys()) this.deliver(clientId);
  }
}
