// The message list of one channel: oldest at the top, newest at the bottom, older pages
// fetched on scroll, orchestrators' replies streamed in from `message:delta`.
import { api } from "./api.js";
import { formatTime, h } from "./dom.js";

const PAGE = 50;
const MENTION = /(@[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9_])?)/gi;

function contentNodes(text) {
  return text.split(MENTION).map((part, i) => (i % 2 ? h("span", { class: "mention" }, part) : part));
}

export class MessageList {
  constructor(channelId, users) {
    this.channelId = channelId;
    this.users = users;
    this.ids = new Set();
    this.nextBefore = null;
    this.loadingOlder = false;
    this.drafts = new Map(); // job_id -> {el, body, seq, authorId, replyTo}
    this.olderButton = h("button", { type: "button", class: "quiet older", hidden: true,
      onclick: () => this.loadOlder() }, "Load older messages");
    this.list = h("ol", { class: "message-list" });
    this.el = h("div", {
      class: "messages", role: "log", "aria-live": "polite", "aria-relevant": "additions",
      tabindex: "0", "aria-label": "Messages",
    }, this.olderButton, this.list);
    this.el.addEventListener("scroll", () => {
      if (this.el.scrollTop < 80) this.loadOlder();
    });
    this.writing = h("p", { class: "writing", role: "status" });
  }

  nameOf(userId) {
    return this.users.get(userId)?.name ?? (userId ? "Someone" : "System");
  }

  atBottom() {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 40;
  }

  scrollToBottom() {
    this.el.scrollTop = this.el.scrollHeight;
  }

  render(message) {
    const meta = message.metadata ?? {};
    const classes = ["message"];
    if (meta.system) classes.push("system");
    return h("li", { class: classes.join(" "), dataset: { id: message.id } },
      h("div", { class: "message-head" },
        h("span", { class: "author" }, this.nameOf(message.author_id)),
        h("time", { datetime: message.created_at }, formatTime(message.created_at))),
      h("p", { class: "content" }, contentNodes(message.content)));
  }

  async loadLatest() {
    const page = await api(`/api/channels/${this.channelId}/messages?limit=${PAGE}`);
    this.list.replaceChildren();
    this.ids.clear();
    for (const message of page.items) this.append(message, { scroll: false });
    if (!page.items.length) {
      this.list.append(h("li", { class: "empty muted" }, "No messages yet. Say hello!"));
    }
    this.setNextBefore(page.next_before);
    this.scrollToBottom();
  }

  /** After a reconnect: merge the newest page; if the gap is wider than a page, start over. */
  async catchUp() {
    const page = await api(`/api/channels/${this.channelId}/messages?limit=${PAGE}`);
    const overlaps = page.items.some((m) => this.ids.has(m.id));
    if (!overlaps && page.next_before) return this.loadLatest();
    for (const message of page.items) this.append(message);
  }

  setNextBefore(value) {
    this.nextBefore = value;
    this.olderButton.hidden = !value;
  }

  async loadOlder() {
    if (!this.nextBefore || this.loadingOlder) return;
    this.loadingOlder = true;
    this.olderButton.textContent = "Loading…";
    try {
      const page = await api(
        `/api/channels/${this.channelId}/messages?limit=${PAGE}&before=${this.nextBefore}`);
      const height = this.el.scrollHeight;
      const fresh = page.items.filter((m) => !this.ids.has(m.id));
      for (const m of fresh) this.ids.add(m.id);
      this.list.prepend(...fresh.map((m) => this.render(m)));
      this.el.scrollTop += this.el.scrollHeight - height; // keep the reader's place
      this.setNextBefore(page.next_before);
    } finally {
      this.loadingOlder = false;
      this.olderButton.textContent = "Load older messages";
    }
  }

  append(message, { scroll = true } = {}) {
    if (this.ids.has(message.id)) return;
    const stick = scroll && this.atBottom();
    this.ids.add(message.id);
    for (const [jobId, draft] of this.drafts) {
      if (draft.authorId === message.author_id && draft.replyTo === message.reply_to_id) {
        draft.el.remove();
        this.drafts.delete(jobId);
      }
    }
    this.list.querySelector(".empty")?.remove();
    this.list.append(this.render(message));
    this.updateWriting();
    if (stick) this.scrollToBottom();
  }

  /** One `message:delta`: the reply being written, shown until its `message:new` lands. */
  delta(data) {
    const stick = this.atBottom();
    let draft = this.drafts.get(data.job_id);
    if (!draft) {
      const body = h("p", { class: "content" });
      const el = h("li", { class: "message draft", "aria-busy": "true" },
        h("div", { class: "message-head" },
          h("span", { class: "author" }, this.nameOf(data.author_id)),
          h("span", { class: "writing-badge" }, "writing…")),
        body);
      draft = { el, body, seq: 0, text: "", authorId: data.author_id, replyTo: data.reply_to_id };
      this.drafts.set(data.job_id, draft);
      this.list.append(el);
      this.updateWriting();
    }
    if (data.seq <= draft.seq) return; // a late duplicate
    draft.seq = data.seq;
    draft.text = data.reset ? "" : draft.text + data.delta;
    draft.body.textContent = draft.text;
    draft.touched = Date.now();
    if (stick) this.scrollToBottom();
  }

  /** Drop drafts whose final message never came (the sender's socket missed it). */
  expireDrafts(maxAgeMs = 120000) {
    for (const [jobId, draft] of this.drafts) {
      if (Date.now() - (draft.touched ?? 0) > maxAgeMs) {
        draft.el.remove();
        this.drafts.delete(jobId);
      }
    }
    this.updateWriting();
  }

  updateWriting() {
    const names = [...new Set([...this.drafts.values()].map((d) => this.nameOf(d.authorId)))];
    this.writing.textContent = names.length
      ? `${names.join(", ")} ${names.length === 1 ? "is" : "are"} writing…`
      : "";
  }
}
