"""Process metrics in the Prometheus text format: counters, gauges read at scrape time, and
a reply-latency histogram. Small on purpose; no global registry (one per manager)."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Histogram:
    buckets: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.count += 1


@dataclass
class Metrics:
    replies: int = 0
    reply_failures: int = 0
    restarts: int = 0
    crashes: int = 0
    gave_up: int = 0
    mentions_deferred: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    reply_latency: Histogram = field(default_factory=Histogram)
    # Read at scrape time: daemons by status.
    daemons_by_status: Callable[[], dict[str, int]] = dict

    def render(self) -> str:
        """The Prometheus text exposition of every metric."""
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(f"{name}{labels} {value:g}" for labels, value in samples)

        by_status = self.daemons_by_status()
        metric(
            "neolith_daemons",
            "gauge",
            "Daemons by status.",
            [(f'{{status="{s}"}}', float(n)) for s, n in sorted(by_status.items())],
        )
        metric("neolith_replies_total", "counter", "Replies posted.", [("", self.replies)])
        metric(
            "neolith_reply_failures_total",
            "counter",
            "Mentions that ended in a visible failure notice.",
            [("", self.reply_failures)],
        )
        metric(
            "neolith_daemon_restarts_total", "counter", "Daemon restarts.", [("", self.restarts)]
        )
        metric("neolith_daemon_crashes_total", "counter", "Daemon crashes.", [("", self.crashes)])
        metric("neolith_daemon_gave_up_total", "counter", "Daemons given up.", [("", self.gave_up)])
        metric(
            "neolith_mentions_deferred_total",
            "counter",
            "Mentions held back by the per-channel reply limit.",
            [("", self.mentions_deferred)],
        )
        metric(
            "neolith_model_tokens_total",
            "counter",
            "Model tokens used.",
            [
                ('{direction="input"}', self.input_tokens),
                ('{direction="output"}', self.output_tokens),
            ],
        )
        hist = self.reply_latency
        out.append("# HELP neolith_reply_latency_seconds From mention stored to reply stored.")
        out.append("# TYPE neolith_reply_latency_seconds histogram")
        running = 0
        for bound, n in zip(hist.buckets, hist.counts, strict=True):
            running += n
            out.append(f'neolith_reply_latency_seconds_bucket{{le="{bound:g}"}} {running}')
        out.append(f'neolith_reply_latency_seconds_bucket{{le="+Inf"}} {hist.count}')
        out.append(f"neolith_reply_latency_seconds_sum {hist.total:g}")
        out.append(f"neolith_reply_latency_seconds_count {hist.count}")
        return "\n".join(out) + "\n"
