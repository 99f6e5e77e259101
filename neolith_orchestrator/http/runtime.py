"""Probes and telemetry: `/healthz` (the process answers), `/readyz` (database reachable and
manager running), `/api/runtime/status` (admins). `/metrics` is `http/metrics.py`."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from neolith_orchestrator.ai.factory import describe_generator
from neolith_orchestrator.ai.providers import count_by_model
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


_SWEEP_FIELDS = ("started_at", "finished_at", "duration_ms")


def _sweep(report: dict[str, Any] | None) -> dict[str, Any] | None:
    # Timing only: a sweep's counts and errors cover every organization's daemons.
    return None if report is None else {k: report[k] for k in _SWEEP_FIELDS}


async def runtime_status(request: Request) -> Response:
    """The caller's organization as the runtime sees it: its daemons by status, its logged-in
    orchestrators and connected sockets, the model in use, whether the supervisor's sweeps
    run. Process-wide figures (every tenant's) are for `/metrics`, not for one tenant."""
    ctx, caller = context(request), await admin(request)
    org_id = caller.user.organization_id
    statuses = await ctx.manager.organization_statuses(org_id)
    by_status = Counter(str(s["status"]) for s in statuses)
    online = ctx.watcher.online
    described = describe_generator(ctx.generator)
    manager = ctx.manager.runtime_status()
    return JSONResponse(
        {
            "organization_id": str(org_id),
            "manager": {
                "running": manager["running"],
                "daemons": {"total": len(statuses), "by_status": dict(sorted(by_status.items()))},
                "sweeps": {kind: _sweep(report) for kind, report in manager["sweeps"].items()},
                "settings": manager["settings"],
            },
            "generator": {
                **{k: described.get(k) for k in ("provider", "model", "offline")},
                # Which providers this server can answer with, and their default models; their
                # addresses, and the replies and tokens of every tenant, are not a tenant's to
                # see (the process-wide figures by provider and model are on /metrics).
                "providers": {
                    name: {"model": d.get("model")}
                    for name, d in (described.get("providers") or {}).items()
                },
            },
            # This organization's running daemons by the provider and model their charters
            # pick (process-wide replies and tokens by model are on /metrics).
            "daemons_by_model": count_by_model(
                (
                    daemon.identity.charter
                    for daemon in ctx.manager.daemons()
                    if daemon.organization_id == org_id
                ),
                ctx.settings,
            ),
            "uptime_s": round(ctx.uptime_s, 3),
            "sockets": ctx.realtime.connections_of(org_id),
            "logged_in_orchestrators": sum(1 for s in statuses if _user_id(s) in online),
        }
    )


def _user_id(status: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(str(status["user_id"]))


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/api/runtime/status", runtime_status, methods=["GET"]),
]
