// The chat view: the channel list, one open channel (messages, composer) and who is online.
import { api, session } from "./api.js";
import { Composer } from "./composer.js";
import { h, replace } from "./dom.js";
import { MessageList } from "./messages.js";

export class ChatView {
  constructor(main, realtime, channelId) {
    this.main = main;
    this.realtime = realtime;
    this.wantedId = channelId;
    this.unsubscribe = [];
    this.presence = new Map(); // user_id -> status
    this.unread = new Set();
    this.destroyed = false;
    this.loaded = false;
    this.subscribe();
    this.reload();
  }

  reload() {
    this.load().catch((exc) => this.fail(exc));
  }

  /** A failed load offers a retry; a reconnect (resync) retries by itself. */
  fail(exc) {
    if (this.destroyed) return;
    replace(this.main, h("div", { class: "notice" },
      h("p", { class: "error", role: "alert" }, `Could not load: ${exc.message}`),
      h("button", { type: "button", onclick: () => this.reload() }, "Try again")));
  }

  async load() {
    const [users, channels, presence] = await Promise.all([
      api("/api/users"), api("/api/channels"), api("/api/presence"),
    ]);
    if (this.destroyed) return;
    this.users = new Map(users.map((u) => [u.id, u]));
    this.channels = channels;
    for (const p of presence) this.presence.set(p.user_id, p.status);
    const mine = channels.filter((c) => c.is_member);
    this.channel = channels.find((c) => c.id === this.wantedId) ?? mine[0] ?? channels[0] ?? null;
    this.channelNav = h("ul", { class: "channel-list" });
    this.people = h("ul", { class: "people-list" });
    this.conversation = h("section", { class: "conversation", "aria-labelledby": "channel-title" });
    replace(this.main, h("div", { class: "chat" },
      h("nav", { class: "channels", "aria-labelledby": "channels-title" },
        h("h2", { id: "channels-title" }, "Channels"), this.channelNav),
      this.conversation,
      h("aside", { class: "people" },
        h("details", { open: window.matchMedia("(min-width: 900px)").matches },
          h("summary", {}, h("h2", { id: "people-title" }, "People")), this.people))));
    this.renderChannels();
    this.renderPeople();
    await this.openChannel();
    this.loaded = true;
  }

  subscribe() {
    const on = (event, fn) => this.unsubscribe.push(this.realtime.on(event, fn));
    on("message:new", (m) => {
      if (m.channel_id === this.channel?.id) {
        if (m.author_id === session.user?.id) this.composer?.settle(m);
        this.messages?.append(m);
      }
      else if (this.channels?.some((c) => c.id === m.channel_id)) {
        this.unread.add(m.channel_id);
        this.renderChannels();
      }
      if (m.author_id && !this.users.has(m.author_id)) this.refreshUsers().catch(() => {});
    });
    on("message:delta", (d) => {
      if (d.channel_id === this.channel?.id) this.messages?.delta(d);
    });
    on("presence:update", (p) => {
      this.presence.set(p.user_id, p.status);
      if (this.people) this.renderPeople();
    });
    const state = () => { if (this.people) this.renderPeople(); };
    this.realtime.addEventListener("state", state);
    this.unsubscribe.push(() => this.realtime.removeEventListener("state", state));
    const resync = () => this.resync();
    this.realtime.addEventListener("resync", resync);
    this.unsubscribe.push(() => this.realtime.removeEventListener("resync", resync));
    const timer = setInterval(() => this.messages?.expireDrafts(), 15000);
    this.unsubscribe.push(() => clearInterval(timer));
  }

  async refreshUsers() {
    const users = await api("/api/users");
    this.users = new Map(users.map((u) => [u.id, u]));
    if (this.messages) this.messages.users = this.users;
  }

  /** Back after a drop: what was missed (messages, presence), then unsent messages. */
  async resync() {
    if (!this.loaded) return this.reload();
    try {
      const presence = await api("/api/presence");
      for (const p of presence) this.presence.set(p.user_id, p.status);
      this.renderPeople();
      await this.messages?.catchUp();
      this.composer?.resendPending();
    } catch {
      // The next reconnect tries again.
    }
  }

  renderChannels() {
    replace(this.channelNav, this.channels.map((c) => {
      const current = c.id === this.channel?.id;
      return h("li", {},
        h("a", { href: `#/channels/${c.id}`, "aria-current": current ? "page" : null,
          class: this.unread.has(c.id) ? "unread" : null },
        `# ${c.name}`,
        this.unread.has(c.id) ? h("span", { class: "visually-hidden" }, " (new messages)") : null,
        c.is_member ? null : h("span", { class: "muted" }, " (not joined)")));
    }));
  }

  renderPeople() {
    const members = this.members ?? [...this.users.values()];
    const sorted = [...members].sort((a, b) =>
      Number(this.isOnline(b)) - Number(this.isOnline(a)) || a.name.localeCompare(b.name));
    replace(this.people, sorted.map((u) => {
      const status = this.statusOf(u);
      const label = status === "ONLINE" ? "online" : status.toLowerCase();
      return h("li", { class: `person status-${label}` },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "name" }, u.name),
        u.is_orchestrator ? h("span", { class: "badge" }, "AI") : null,
        h("span", { class: "status-text" }, label));
    }));
  }

  statusOf(user) {
    // The server announces a person to the others, not to their own sockets.
    if (user.id === session.user?.id) return this.realtime.state === "online" ? "ONLINE" : "OFFLINE";
    return this.presence.get(user.id) ?? "OFFLINE";
  }

  isOnline(user) {
    return this.statusOf(user) === "ONLINE";
  }

  async openChannel() {
    const channel = this.channel;
    if (!channel) {
      replace(this.conversation, h("p", { class: "notice" }, "You are in no channel yet."));
      return;
    }
    this.unread.delete(channel.id);
    this.renderChannels();
    const title = h("h2", { id: "channel-title" }, `# ${channel.name}`);
    const header = h("header", { class: "channel-header" }, title,
      channel.topic ? h("p", { class: "topic" }, channel.topic) : null);
    if (!channel.is_member) {
      const join = h("button", { type: "button", class: "primary", onclick: () => this.join() },
        `Join #${channel.name}`);
      replace(this.conversation, header, h("p", { class: "notice" }, "You are not in this channel."), join);
      return;
    }
    this.messages = new MessageList(channel.id, this.users);
    this.composer = new Composer({
      channelName: channel.name, realtime: this.realtime, channelId: channel.id,
      onSent: (m) => this.messages.append(m),
    });
    this.composer.onPending = (el) => {
      this.messages.list.append(el);
      this.messages.scrollToBottom();
    };
    replace(this.conversation, header, this.messages.el, this.messages.writing, this.composer.el);
    const [members] = await Promise.all([
      api(`/api/channels/${channel.id}/members`), this.messages.loadLatest(),
    ]);
    if (this.destroyed) return;
    this.members = members;
    this.composer.setCandidates(members);
    this.renderPeople();
    if (!this.main.contains(document.activeElement)) this.composer.input.focus();
  }

  async join() {
    try {
      await api(`/api/channels/${this.channel.id}/members`,
        { method: "POST", body: { user_id: session.user.id } });
      this.channel.is_member = true;
      await this.openChannel();
    } catch (exc) {
      this.fail(exc);
    }
  }

  destroy() {
    this.destroyed = true;
    for (const off of this.unsubscribe) off();
  }
}
