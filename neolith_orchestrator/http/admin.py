"""Admin endpoints: an organization's daemons (status, lifecycle), its event log, its
orchestrators (create, read, edit the charter) and its token usage by month. Admins see
their own organization only: another organization's ids are 404, exactly like ids that do
not exist."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from neolith_orchestrator.accounts import service as accounts
from neolith_orchestrator.ai.charter import parse_charter
from neolith_orchestrator.ai.providers import require_credentials
from neolith_orchestrator.chat import usage
from neolith_orchestrator.chat.schemas import user_out
from neolith_orchestrator.context import AppContext
from neolith_orchestrator.daemons.eventlog import list_events
from neolith_orchestrator.db.models import Orchestrator, Organization, User
from neolith_orchestrator.errors import NotFound
from neolith_orchestrator.http import inputs
from neolith_orchestrator.http.deps import admin, context

_ACTIONS = ("start", "stop", "restart", "pause", "resume")


def orchestrator_out(orchestrator: Orchestrator, user: User) -> dict[str, Any]:
    return {
        "id": str(orchestrator.id),
        "organization_id": str(orchestrator.organization_id),
        "user": user_out(user),
        "discipline": orchestrator.discipline,
        "role": orchestrator.role,
        "capabilities": list(orchestrator.capabilities),
        "status": orchestrator.status,
        "charter": user.orchestrator_config,
        "created_at": orchestrator.created_at.isoformat(),
    }


async def _owned(ctx: AppContext, org_id: uuid.UUID, orchestrator_id: uuid.UUID) -> None:
    """404 unless the orchestrator belongs to `org_id`."""
    async with ctx.database.transaction() as session:
        await accounts.get_orchestrator(session, org_id, orchestrator_id)


async def list_daemons(request: Request) -> Response:
    ctx, caller = context(request), await admin(request)
    return JSONResponse(await ctx.manager.organization_statuses(caller.user.organization_id))


async def get_daemon(request: Request) -> Response:
    ctx, caller = context(request), await admin(request)
    orchestrator_id = inputs.path_uuid(request, "orchestrator_id")
    status = await ctx.manager.orchestrator_status(caller.user.organization_id, orchestrator_id)
    return JSONResponse(status)


async def daemon_action(request: Request) -> Response:
    """start / stop / restart / pause / resume one daemon; answers its status afterwards."""
    ctx, caller = context(request), await admin(request)
    orchestrator_id = inputs.path_uuid(request, "orchestrator_id")
    action = request.path_params["action"]
    if action not in _ACTIONS:
        raise NotFound(f"unknown daemon action {action!r}; use one of {', '.join(_ACTIONS)}")
    org_id = caller.user.organization_id
    await _owned(ctx, org_id, orchestrator_id)
    manager = ctx.manager
    steps = {
        "start": manager.start_daemon,
        "stop": manager.stop_daemon,
        "restart": manager.restart_daemon,
        "pause": manager.pause_daemon,
        "resume": manager.resume_daemon,
    }
    await steps[action](orchestrator_id)
    return JSONResponse(await manager.orchestrator_status(org_id, orchestrator_id))


async def events(request: Request) -> Response:
    """The event log, newest first; `before` (an event id) pages back."""
    ctx, caller = context(request), await admin(request)
    org_id = caller.user.organization_id
    orchestrator_id = inputs.query_uuid(request, "orchestrator_id")
    limit = inputs.query_int(request, "limit", 100, low=1, high=500)
    before = inputs.query_uuid(request, "before")
    async with ctx.database.transaction() as session:
        if orchestrator_id is not None:
            await accounts.get_orchestrator(session, org_id, orchestrator_id)
        items = await list_events(
            session, org_id, orchestrator_id=orchestrator_id, limit=limit, before=before
        )
    next_before = items[-1]["id"] if len(items) == limit else None
    return JSONResponse({"items": items, "next_before": next_before})


async def create_orchestrator(request: Request) -> Response:
    """A new orchestrator user with its charter, in the admin's organization."""
    ctx, caller = context(request), await admin(request)
    data = await inputs.body(request, inputs.OrchestratorIn)
    charter = parse_charter(data.charter)
    require_credentials(charter, ctx.settings)
    async with ctx.database.transaction() as session:
        org = await session.get_one(Organization, caller.user.organization_id)
        user = await accounts.create_user(
            session,
            org,
            email=data.email,
            name=data.name,
            password=data.password,
            handle=data.handle,
            is_admin=data.is_admin,
            charter=charter,
        )
        orchestrator = await accounts.orchestrator_for_user(session, user.id)
        assert orchestrator is not None
    return JSONResponse(orchestrator_out(orchestrator, user), status_code=201)


async def get_orchestrator(request: Request) -> Response:
    ctx, caller = context(request), await admin(request)
    orchestrator_id = inputs.path_uuid(request, "orchestrator_id")
    async with ctx.database.transaction() as session:
        orchestrator, user = await accounts.get_orchestrator(
            session, caller.user.organization_id, orchestrator_id
        )
    return JSONResponse(orchestrator_out(orchestrator, user))


async def put_charter(request: Request) -> Response:
    """Replace the charter (the body is the charter itself). A running daemon writes its
    next reply with the new charter."""
    ctx, caller = context(request), await admin(request)
    orchestrator_id = inputs.path_uuid(request, "orchestrator_id")
    charter = parse_charter(await inputs.read_json(request))
    require_credentials(charter, ctx.settings)
    async with ctx.database.transaction() as session:
        orchestrator, user = await accounts.get_orchestrator(
            session, caller.user.organization_id, orchestrator_id
        )
        # The service updates this same `user` (one identity map per session).
        await accounts.update_charter(session, orchestrator, charter)
    await ctx.manager.refresh_identity(orchestrator_id)
    return JSONResponse(orchestrator_out(orchestrator, user))


async def usage_report(request: Request) -> Response:
    """Tokens used in a month (`month=YYYY-MM`, default this one, UTC) by orchestrator,
    provider and model, with the organization's budget."""
    ctx, caller = context(request), await admin(request)
    month = usage.Month.parse(request.query_params.get("month"))
    async with ctx.database.transaction() as session:
        body = await usage.report(session, ctx.settings, caller.user.organization_id, month)
    return JSONResponse(body)


_DAEMON = "/api/admin/daemons/{orchestrator_id:uuid}"
_ORCHESTRATOR = "/api/admin/orchestrators/{orchestrator_id:uuid}"
routes = [
    Route("/api/admin/daemons", list_daemons, methods=["GET"]),
    Route(_DAEMON, get_daemon, methods=["GET"]),
    Route(_DAEMON + "/{action:str}", daemon_action, methods=["POST"]),
    Route("/api/admin/events", events, methods=["GET"]),
    Route("/api/admin/usage", usage_report, methods=["GET"]),
    Route("/api/admin/orchestrators", create_orchestrator, methods=["POST"]),
    Route(_ORCHESTRATOR, get_orchestrator, methods=["GET"]),
    Route(_ORCHESTRATOR + "/charter", put_charter, methods=["PUT"]),
]
