// The admin health panel: replies per minute, failures and reply latency, from the same
// counters as /metrics (GET /api/admin/health), sampled every few seconds.
import { api } from "./api.js";
import { formatDuration, h, replace } from "./dom.js";

const WINDOW_MS = 60000;

function percentile(latency, q) {
  if (!latency.count) return null;
  const target = q * latency.count;
  for (const [bound, cumulative] of latency.buckets) if (cumulative >= target) return bound;
  return Infinity;
}

function seconds(value) {
  if (value === null) return "—";
  if (value === Infinity) return "> 60 s";
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(1)} s`;
}

export class HealthPanel {
  constructor(onOwners) {
    this.onOwners = onOwners;
    this.samples = [];
    this.figures = h("dl", { class: "figures" });
    this.el = h("section", { class: "panel health", "aria-labelledby": "health-title" },
      h("h2", { id: "health-title" }, "Health"), this.figures);
    this.poll();
    this.timer = setInterval(() => this.poll(), 5000);
  }

  async poll() {
    let sample;
    try {
      sample = await api("/api/admin/health");
    } catch (exc) {
      replace(this.figures, h("p", { class: "error" }, `Health unavailable: ${exc.message}`));
      return;
    }
    const now = Date.now();
    this.samples.push({ at: now, ...sample });
    this.samples = this.samples.filter((s) => now - s.at <= WINDOW_MS + 5000);
    this.onOwners?.(sample.owners, sample.instance_id);
    this.render();
  }

  render() {
    const last = this.samples.at(-1);
    const first = this.samples[0];
    const minutes = Math.max((last.at - first.at) / 60000, 1 / 60);
    const sameProcess = first.instance_id === last.instance_id && first.uptime_s <= last.uptime_s;
    const rate = (key) => (this.samples.length > 1 && sameProcess
      ? ((last[key] - first[key]) / minutes).toFixed(1) : "—");
    const lat = last.reply_latency_seconds;
    const recentCount = lat.count - first.reply_latency_seconds.count;
    const recentMean = recentCount > 0 && sameProcess
      ? (lat.sum - first.reply_latency_seconds.sum) / recentCount : null;
    const overallMean = lat.count ? lat.sum / lat.count : null;
    const item = (term, value) => [h("dt", {}, term), h("dd", {}, value)];
    replace(this.figures,
      item("Replies per minute", rate("replies_total")),
      item("Failures per minute", rate("reply_failures_total")),
      item("Failures since start", String(last.reply_failures_total)),
      item("Replies since start", String(last.replies_total)),
      item("Reply latency (last minute, mean)", seconds(recentMean)),
      item("Reply latency (mean / p95)", `${seconds(overallMean)} / ${seconds(percentile(lat, 0.95))}`),
      item("Instance", `${last.instance_id} (up ${formatDuration(last.uptime_s * 1000)})`));
  }

  destroy() {
    clearInterval(this.timer);
  }
}
