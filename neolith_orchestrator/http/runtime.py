"""Probes and telemetry: `/healthz` (the process answers), `/readyz` (database reachable and
manager running), `/metrics` (Prometheus text), `/api/runtime/status` (admins)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from neolith_orchestrator.ai.factory import describe_generator
from neolith_orchestrator.ai.providers import count_by_model
from neolith_orchestrator.context import AppContext
from neolith_orchestrator.http.deps import admin, context

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ctx = getattr(request.app.state, "context", None)
    running = isinstance(ctx, AppContext) and ctx.ready
    database = isinstance(ctx, AppContext) and await ctx.database.ping()
    ready = running and database
    body = {"status": "ready" if ready else "not_ready", "database": database, "manager": running}
    return JSONResponse(body, status_code=200 if ready else 503)


def _own_metrics(ctx: AppContext) -> str:
    counters = ctx.auth.counters
    lines = [
        "# HELP neolith_auth_logins_total Login attempts by outcome.",
        "# TYPE neolith_auth_logins_total counter",
        f'neolith_auth_logins_total{{outcome="success"}} {counters.logins}',
        f'neolith_auth_logins_total{{outcome="failure"}} {counters.failures}',
        f'neolith_auth_logins_total{{outcome="throttled"}} {counters.throttled}',
        "# HELP neolith_auth_logouts_total Sessions ended by logout.",
        "# TYPE neolith_auth_logouts_total counter",
        f"neolith_auth_logouts_total {counters.logouts}",
        "# HELP neolith_auth_session_sweeps_total Session expiry sweeps run.",
        "# TYPE neolith_auth_session_sweeps_total counter",
        f"neolith_auth_session_sweeps_total {ctx.watcher.sweeps}",
        "# HELP neolith_socket_connections Connected Socket.IO clients.",
        "# TYPE neolith_socket_connections gauge",
        f"neolith_socket_connections {ctx.realtime.connections}",
        "# HELP neolith_process_uptime_seconds Seconds since the app started.",
        "# TYPE neolith_process_uptime_seconds gauge",
        f"neolith_process_uptime_seconds {ctx.uptime_s:.3f}",
    ]
    return "\n".join(lines) + "\n"


async def metrics(request: Request) -> Response:
    ctx = context(request)
    text = ctx.manager.metrics.render()
    if text and not text.endswith("\n"):
        text += "\n"
    return PlainTextResponse(text + _own_metrics(ctx), media_type=PROMETHEUS_CONTENT_TYPE)


async def runtime_status(request: Request) -> Response:
    """The manager's summary (counts by status, last sweeps) and the model provider."""
    ctx = context(request)
    await admin(request)
    return JSONResponse(
        {
            "manager": ctx.manager.runtime_status(),
            "generator": describe_generator(ctx.generator),
            # Running daemons by the provider and model their charters pick; the replies and
            # tokens of each since start-up are under generator.usage.
            "daemons_by_model": count_by_model(
                (daemon.identity.charter for daemon in ctx.manager.daemons()), ctx.settings
            ),
            "uptime_s": round(ctx.uptime_s, 3),
            "sockets": ctx.realtime.connections,
            "logged_in_orchestrators": len(ctx.watcher.online),
        }
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/api/runtime/status", runtime_status, methods=["GET"]),
]
