"""The daemon manager's metrics, as prometheus-client collectors.

They belong to no registry when made (prometheus-client's global default registry would
make a second manager in one process, as in the tests, a duplicate-name error): the app
registers them on its own `CollectorRegistry` (see `http/metrics.py`). Daemons by status are
read at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _DaemonsByStatus(Collector):
    def __init__(self, read: Callable[[], Mapping[str, int]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("neolith_daemons", "Daemons by status.", labels=["status"])
        for status, count in sorted(self._read().items()):
            family.add_metric([status], count)
        yield family


class Metrics:
    """Counters the manager and its daemons increment, and the reply-latency histogram."""

    def __init__(self, daemons_by_status: Callable[[], Mapping[str, int]] = dict) -> None:
        def counter(name: str, help_: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, help_, labels, registry=None)

        self.replies = counter("neolith_replies", "Replies posted, by model.", ("model",))
        self.reply_failures = counter(
            "neolith_reply_failures", "Mentions that ended in a visible failure notice."
        )
        self.restarts = counter("neolith_daemon_restarts", "Daemon restarts.")
        self.crashes = counter("neolith_daemon_crashes", "Daemon crashes.")
        self.gave_up = counter("neolith_daemon_gave_up", "Daemons given up.")
        self.mentions_deferred = counter(
            "neolith_mentions_deferred", "Mentions held back by the per-channel reply limit."
        )
        self.model_tokens = counter(
            "neolith_model_tokens",
            "Model tokens used, by direction, provider and model.",
            ("direction", "provider", "model"),
        )
        self.reply_latency = Histogram(
            "neolith_reply_latency_seconds",
            "From mention stored to reply stored.",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self._daemons = _DaemonsByStatus(daemons_by_status)

    def reply_posted(
        self, *, provider: str, model: str, usage: Mapping[str, int], latency_s: float
    ) -> None:
        """One reply stored: count it, its tokens and its latency."""
        self.replies.labels(model=model).inc()
        for direction in ("input", "output"):
            tokens = usage.get(f"{direction}_tokens", 0)
            self.model_tokens.labels(direction=direction, provider=provider, model=model).inc(
                tokens
            )
        self.reply_latency.observe(latency_s)

    def figures(self) -> dict[str, Any]:
        """The reply counters and the latency histogram as plain numbers, read from the same
        samples `/metrics` renders (for JSON readers such as the web app's health panel)."""
        latency: dict[str, Any] = {"count": 0, "sum": 0.0, "buckets": []}
        for family in self.reply_latency.collect():
            for sample in family.samples:
                if sample.name.endswith("_bucket") and sample.labels["le"] != "+Inf":
                    latency["buckets"].append([float(sample.labels["le"]), int(sample.value)])
                elif sample.name.endswith("_count"):
                    latency["count"] = int(sample.value)
                elif sample.name.endswith("_sum"):
                    latency["sum"] = sample.value
        return {
            "replies_total": _total(self.replies),
            "reply_failures_total": _total(self.reply_failures),
            "daemon_restarts_total": _total(self.restarts),
            "reply_latency_seconds": latency,
        }

    def collectors(self) -> list[Collector]:
        """Everything to register on a registry."""
        return [
            self._daemons,
            self.replies,
            self.reply_failures,
            self.restarts,
            self.crashes,
            self.gave_up,
            self.mentions_deferred,
            self.model_tokens,
            self.reply_latency,
        ]


def _total(counter: Counter) -> int:
    """A counter's value summed over its labels."""
    return int(
        sum(s.value for f in counter.collect() for s in f.samples if s.name.endswith("_total"))
    )
