"""`GET /metrics`: the Prometheus exposition of one app's own `CollectorRegistry`.

Each app builds its registry (never prometheus-client's global default, so a process — or a
test — can hold many apps): the process and GC collectors, and one collector that reads the
running app at scrape time — the manager's metrics, the logins, sockets and uptime.

With `METRICS_PORT` set, `/metrics` moves to that port (a second, minimal server the app's
lifespan starts and stops) and the main port no longer serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator, Iterable

import uvicorn
from prometheus_client import CollectorRegistry, GCCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neolith_orchestrator.context import AppContext
from neolith_orchestrator.errors import ConfigError
from neolith_orchestrator.http.security import SecurityHeaders

# The classic text format, which `generate_latest` writes.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_SERVER_TASK = "neolith:metrics-server"


class _AppCollector(Collector):
    """Reads the running app (nothing while it is stopped)."""

    def __init__(self, running: Callable[[], AppContext | None]) -> None:
        self._running = running

    def collect(self) -> Iterable[Metric]:
        ctx = self._running()
        if ctx is None:
            return
        for collector in ctx.manager.metrics.collectors():
            yield from collector.collect()
        counters = ctx.auth.counters
        logins = CounterMetricFamily(
            "neolith_auth_logins", "Login attempts by outcome.", labels=["outcome"]
        )
        logins.add_metric(["success"], counters.logins)
        logins.add_metric(["failure"], counters.failures)
        logins.add_metric(["throttled"], counters.throttled)
        yield logins
        yield CounterMetricFamily(
            "neolith_auth_logouts", "Sessions ended by logout.", value=counters.logouts
        )
        yield CounterMetricFamily(
            "neolith_auth_session_sweeps", "Session expiry sweeps run.", value=ctx.watcher.sweeps
        )
        yield GaugeMetricFamily(
            "neolith_socket_connections",
            "Connected Socket.IO clients.",
            value=ctx.realtime.connections,
        )
        yield GaugeMetricFamily(
            "neolith_process_uptime_seconds", "Seconds since the app started.", value=ctx.uptime_s
        )


def build_registry(running: Callable[[], AppContext | None]) -> CollectorRegistry:
    """A registry of its own for one app: process, GC, and the app's metrics."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    registry.register(_AppCollector(running))
    return registry


async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    assert isinstance(registry, CollectorRegistry)
    return Response(generate_latest(registry), media_type=PROMETHEUS_CONTENT_TYPE)


routes = [Route("/metrics", metrics, methods=["GET"])]


class _SecondServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The main server owns SIGINT/SIGTERM; this one stops when the app's lifespan ends.
        yield


class MetricsServer:
    """`/metrics` alone, on its own port; `start()` binds (failing loudly), `stop()` awaits."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.host, self.port = host, port
        app = Starlette(routes=routes)
        app.state.metrics_registry = registry
        config = uvicorn.Config(
            SecurityHeaders(app), lifespan="off", log_config=None, access_log=False
        )
        self._server = _SecondServer(config)
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    async def start(self) -> None:
        """Bind and listen (a taken port is a `ConfigError` naming METRICS_PORT), then serve."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            # Listening now: a scrape that arrives before uvicorn's first tick waits in the
            # backlog instead of being refused.
            sock.listen()
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"METRICS_PORT: cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from exc
        self._sock = sock
        self._task = asyncio.create_task(self._server.serve([sock]), name=METRICS_SERVER_TASK)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        if self._sock is not None:
            self._sock.close()
