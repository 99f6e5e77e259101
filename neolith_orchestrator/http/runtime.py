"""Probes and telemetry: `/healthz` (the process answers), `/readyz` (database reachable and
manager running), `/api/runtime/status` (admins). `/metrics` is `http/metrics.py`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from neolith_orchestrator.ai.factory import describe_generator
from neolith_orchestrator.context import AppContext
from neolith_orchestrator.http.deps import admin, context


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ctx = getattr(request.app.state, "context", None)
    running = isinstance(ctx, AppContext) and ctx.ready
    database = isinstance(ctx, AppContext) and await ctx.database.ping()
    ready = running and database
    body = {"status": "ready" if ready else "not_ready", "database": database, "manager": running}
    return JSONResponse(body, status_code=200 if ready else 503)


async def runtime_status(request: Request) -> Response:
    """The manager's summary (counts by status, last sweeps) and the model provider."""
    ctx = context(request)
    await admin(request)
    return JSONResponse(
        {
            "manager": ctx.manager.runtime_status(),
            "generator": describe_generator(ctx.generator),
            "uptime_s": round(ctx.uptime_s, 3),
            "sockets": ctx.realtime.connections,
            "logged_in_orchestrators": len(ctx.watcher.online),
        }
    )


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/api/runtime/status", runtime_status, methods=["GET"]),
]
