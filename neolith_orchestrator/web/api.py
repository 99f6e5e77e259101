"""Two reads the web app needs that the API did not have: who is online now (the
`presence:update` events then keep it current) and the admin health panel's figures.

The health figures are the same counters `/metrics` renders, as JSON, so the panel needs no
Prometheus parser; the browser turns successive samples into per-minute rates.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from neolith_orchestrator.accounts import service as accounts
from neolith_orchestrator.db.models import OrchestratorStatus
from neolith_orchestrator.http.deps import admin, context, principal


async def presence(request: Request) -> Response:
    """Everyone in the caller's organization with a presence status. A person is ONLINE while
    a socket of theirs is connected to this process; an orchestrator has its row's status."""
    ctx, caller = context(request), await principal(request)
    org_id = caller.user.organization_id
    async with ctx.database.transaction() as session:
        users = await accounts.list_users(session, org_id)
        orchestrators = await accounts.list_orchestrators(session, org_id)
    status_of = {user.id: orchestrator.status for orchestrator, user in orchestrators}
    online, offline = OrchestratorStatus.ONLINE.value, OrchestratorStatus.OFFLINE.value
    items = []
    for user in users:
        if user.is_orchestrator:
            status = str(status_of.get(user.id, offline))
        else:
            status = online if ctx.realtime.sids_of(user.id) else offline
        items.append(
            {
                "user_id": str(user.id),
                "handle": user.handle,
                "name": user.name,
                "is_orchestrator": user.is_orchestrator,
                "status": status,
            }
        )
    return JSONResponse(items)


async def health(request: Request) -> Response:
    """This process's reply counters and latency histogram (as in `/metrics`), and which
    instance holds each of the organization's orchestrators."""
    ctx, caller = context(request), await admin(request)
    async with ctx.database.transaction() as session:
        rows = await accounts.list_orchestrators(session, caller.user.organization_id)
    return JSONResponse(
        {
            "instance_id": ctx.manager.instance_id,
            "uptime_s": round(ctx.uptime_s, 3),
            **ctx.manager.metrics.figures(),
            "owners": {str(o.id): o.lease_owner for o, _ in rows},
        }
    )


routes: list[Any] = [
    Route("/api/presence", presence, methods=["GET"]),
    Route("/api/admin/health", health, methods=["GET"]),
]
