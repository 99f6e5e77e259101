// The admin view (an organization's admins only; the API enforces it too): live daemon
// statuses from `daemon:status`, lifecycle buttons, the event log, orchestrator forms and
// the health panel.
import { api } from "./api.js";
import { CharterForm } from "./charter.js";
import { formatDuration, formatTime, h, replace } from "./dom.js";
import { HealthPanel } from "./health.js";

const ACTIONS = [
  ["start", "Start", (s) => !["running", "initializing", "paused"].includes(s)],
  ["stop", "Stop", (s) => s !== "stopped"],
  ["restart", "Restart", () => true],
  ["pause", "Pause", (s) => s === "running"],
  ["resume", "Resume", (s) => s === "paused"],
];

function summary(payload) {
  if (!payload) return "";
  const bits = [];
  if (payload.from || payload.to) bits.push(`${payload.from ?? "?"} → ${payload.to ?? "?"}`);
  for (const key of ["reason", "error", "problem", "message"]) {
    if (payload[key]) bits.push(String(payload[key]));
  }
  return bits.join(" · ");
}

export class AdminView {
  constructor(main, realtime) {
    this.main = main;
    this.realtime = realtime;
    this.daemons = new Map(); // orchestrator_id -> {status, receivedAt, row}
    this.owners = {};
    this.filter = "";
    this.nextBefore = null;
    this.unsubscribe = [];
    this.destroyed = false;
    this.tbody = h("tbody");
    this.events = h("ol", { class: "event-log" });
    this.filterSelect = h("select", { id: "event-filter", onchange: () => {
      this.filter = this.filterSelect.value;
      this.loadEvents();
    } });
    this.olderEvents = h("button", { type: "button", class: "quiet", hidden: true,
      onclick: () => this.loadEvents(true) }, "Older events");
    this.health = new HealthPanel((owners) => { this.owners = owners; this.renderAll(); });
    this.dialog = h("dialog", { class: "charter-dialog", "aria-label": "Charter" });
    this.createSlot = h("div", {});
    this.layout();
    this.subscribe();
    this.refresh().catch((exc) => this.fail(exc));
  }

  layout() {
    const table = h("table", { class: "daemons" },
      h("caption", { class: "visually-hidden" }, "Orchestrator daemons"),
      h("thead", {}, h("tr", {}, ["Orchestrator", "Status", "Uptime", "Restarts", "Queue",
        "Last error", "Instance", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
      this.tbody);
    this.createButton = h("button", { type: "button", class: "primary",
      "aria-expanded": "false", onclick: () => this.toggleCreate() }, "New orchestrator");
    replace(this.main, h("div", { class: "admin" },
      h("section", { class: "panel daemons-panel", "aria-labelledby": "daemons-title" },
        h("div", { class: "panel-head" }, h("h2", { id: "daemons-title" }, "Daemons"), this.createButton),
        this.createSlot,
        h("div", { class: "table-wrap" }, table)),
      this.health.el,
      h("section", { class: "panel events-panel", "aria-labelledby": "events-title" },
        h("div", { class: "panel-head" }, h("h2", { id: "events-title" }, "Event log"),
          h("div", { class: "filter" }, h("label", { for: "event-filter" }, "Orchestrator"), this.filterSelect)),
        this.events, this.olderEvents),
      this.dialog));
  }

  fail(exc) {
    if (!this.destroyed) replace(this.tbody, h("tr", {}, h("td", { colspan: "8", class: "error" }, exc.message)));
  }

  subscribe() {
    this.unsubscribe.push(this.realtime.on("daemon:status", (status) => {
      const known = this.daemons.get(status.orchestrator_id);
      this.update({ ...(known?.status ?? {}), ...status });
      this.scheduleEvents();
    }));
    const resync = () => this.refresh().catch(() => {});
    this.realtime.addEventListener("resync", resync);
    this.unsubscribe.push(() => this.realtime.removeEventListener("resync", resync));
    const tick = setInterval(() => this.tickUptime(), 1000);
    this.unsubscribe.push(() => clearInterval(tick));
  }

  async refresh() {
    const statuses = await api("/api/admin/daemons");
    if (this.destroyed) return;
    for (const status of statuses) this.update(status, false);
    this.renderAll();
    this.renderFilter();
    await this.loadEvents();
  }

  update(status, render = true) {
    const entry = this.daemons.get(status.orchestrator_id) ?? {};
    entry.status = status;
    entry.receivedAt = Date.now();
    this.daemons.set(status.orchestrator_id, entry);
    if (render && entry.row) this.renderRow(entry);
    else if (render) this.renderAll();
  }

  renderAll() {
    const entries = [...this.daemons.values()].sort((a, b) => a.status.name.localeCompare(b.status.name));
    for (const entry of entries) this.renderRow(entry);
    replace(this.tbody, entries.map((e) => e.row));
  }

  renderRow(entry) {
    const s = entry.status;
    const cell = (label, ...content) => h("td", { dataset: { label } }, content);
    const buttons = ACTIONS.map(([action, label, enabled]) => h("button", {
      type: "button", class: `action action-${action}`, disabled: !enabled(s.status),
      "aria-label": `${label} ${s.name}`, onclick: () => this.act(s.orchestrator_id, action),
    }, label));
    const row = h("tr", { dataset: { orchestratorId: s.orchestrator_id } },
      h("th", { scope: "row", dataset: { label: "Orchestrator" } }, s.name,
        h("span", { class: "muted" }, ` @${s.handle}`)),
      cell("Status", h("span", { class: `status status-${s.status}` }, s.status),
        s.note ? h("span", { class: "muted note" }, s.note) : null),
      cell("Uptime", h("span", { class: "uptime" }, this.uptimeText(entry))),
      cell("Restarts", String(s.restart_count ?? 0)),
      cell("Queue", String(s.queue_depth ?? s.pending_mentions ?? 0)),
      cell("Last error", s.last_error ? h("span", { class: "last-error" }, s.last_error) : "—"),
      cell("Instance", s.instance_id ?? s.owner ?? this.owners[s.orchestrator_id] ?? "—"),
      cell("Actions", h("div", { class: "actions" }, buttons,
        h("button", { type: "button", class: "quiet", "aria-label": `Edit the charter of ${s.name}`,
          onclick: () => this.editCharter(s.orchestrator_id) }, "Charter")),
      h("p", { class: "row-error", role: "alert" })));
    entry.row?.replaceWith(row);
    entry.row = row;
  }

  uptimeText(entry) {
    const s = entry.status;
    if (!["running", "paused"].includes(s.status)) return "—";
    return formatDuration((s.uptime_ms ?? 0) + Date.now() - entry.receivedAt);
  }

  tickUptime() {
    for (const entry of this.daemons.values()) {
      const el = entry.row?.querySelector(".uptime");
      if (el) el.textContent = this.uptimeText(entry);
    }
  }

  async act(orchestratorId, action) {
    const entry = this.daemons.get(orchestratorId);
    const error = entry.row.querySelector(".row-error");
    error.textContent = "";
    entry.row.querySelectorAll("button.action").forEach((b) => { b.disabled = true; });
    try {
      const status = await api(`/api/admin/daemons/${orchestratorId}/${action}`, { method: "POST" });
      this.update({ ...entry.status, ...status });
    } catch (exc) {
      this.renderRow(entry);
      entry.row.querySelector(".row-error").textContent = `${action} failed: ${exc.message}`;
    }
    entry.row.querySelector(`button.action-${action}`)?.focus();
    this.scheduleEvents();
  }

  renderFilter() {
    const current = this.filter;
    replace(this.filterSelect, h("option", { value: "" }, "All orchestrators"),
      [...this.daemons.values()].map((e) => h("option", { value: e.status.orchestrator_id },
        e.status.name)));
    this.filterSelect.value = current;
  }

  scheduleEvents() {
    clearTimeout(this.eventsTimer);
    this.eventsTimer = setTimeout(() => this.loadEvents(), 800);
  }

  async loadEvents(older = false) {
    const params = new URLSearchParams({ limit: "50" });
    if (this.filter) params.set("orchestrator_id", this.filter);
    if (older && this.nextBefore) params.set("before", this.nextBefore);
    const page = await api(`/api/admin/events?${params}`);
    if (this.destroyed) return;
    const nameOf = (id) => this.daemons.get(id)?.status.name ?? "—";
    const items = page.items.map((e) => h("li", { class: "event" },
      h("time", { datetime: e.created_at }, formatTime(e.created_at)),
      h("span", { class: "event-who" }, nameOf(e.orchestrator_id)),
      h("span", { class: "event-type" }, e.type),
      h("span", { class: "event-detail" }, summary(e.payload))));
    if (older) this.events.append(...items);
    else replace(this.events, items.length ? items : h("li", { class: "muted" }, "No events yet."));
    this.nextBefore = page.next_before;
    this.olderEvents.hidden = !page.next_before;
  }

  toggleCreate() {
    if (this.createSlot.firstChild) {
      replace(this.createSlot);
      this.createButton.setAttribute("aria-expanded", "false");
      return;
    }
    const form = new CharterForm({
      orchestrator: null,
      onDone: () => this.refresh().catch(() => {}),
      onCancel: () => this.toggleCreate(),
    });
    replace(this.createSlot, form.el);
    this.createButton.setAttribute("aria-expanded", "true");
    form.el.querySelector("input")?.focus();
  }

  async editCharter(orchestratorId) {
    const orchestrator = await api(`/api/admin/orchestrators/${orchestratorId}`);
    const close = () => this.dialog.close();
    const form = new CharterForm({ orchestrator, onDone: () => this.refresh().catch(() => {}), onCancel: close });
    replace(this.dialog, form.el);
    this.dialog.showModal();
    form.controls.name.focus();
  }

  destroy() {
    this.destroyed = true;
    this.health.destroy();
    clearTimeout(this.eventsTimer);
    for (const off of this.unsubscribe) off();
  }
}
