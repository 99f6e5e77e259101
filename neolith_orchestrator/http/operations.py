"""What each HTTP operation takes and answers, for the OpenAPI schema: the part a Starlette
route cannot tell (body and response models, query parameters, who may call it).

Keyed by method and the route's path as written in its `routes` list. A route missing here
is still in the schema, with its docstring and no body or response details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from neolith_orchestrator.http import inputs
from neolith_orchestrator.http import outputs as out

Auth = Literal["none", "user", "admin"]


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Op:
    """One operation: `auth` none (anyone), user (a bearer token) or admin."""

    auth: Auth = "user"
    body: type[BaseModel] | dict[str, Any] | None = None
    response: type[BaseModel] | None = None
    many: bool = False  # the response is a JSON array of `response`
    status: int = 200
    media_type: str = "application/json"
    query: tuple[Query, ...] = ()
    path_enums: tuple[tuple[str, tuple[str, ...]], ...] = ()
    errors: tuple[int, ...] = ()
    tag: str = ""


def _page(limit: int, high: int, before: str) -> tuple[Query, ...]:
    return (
        Query("limit", {"type": "integer", "minimum": 1, "maximum": high, "default": limit}),
        Query("before", {"type": "string", "format": "uuid"}, f"the {before} to page back from"),
    )


_CHANNEL = "/api/channels/{channel_id:uuid}"
_DAEMON = "/api/admin/daemons/{orchestrator_id:uuid}"
_ORCHESTRATOR = "/api/admin/orchestrators/{orchestrator_id:uuid}"
_CHARTER = {
    "type": "object",
    "description": "A charter: name, role, discipline, mission, personality, instructions, "
    "capabilities, model_settings (or Neolith's shape). Unknown fields are refused by name.",
    "required": ["name"],
}
_DAEMON_ACTIONS = ("start", "stop", "restart", "pause", "resume")
_TEXT = "text/plain"

OPERATIONS: dict[tuple[str, str], Op] = {
    # auth
    ("POST", "/api/auth/login"): Op(
        "none", inputs.LoginIn, out.LoginOut, errors=(401, 429), tag="auth"
    ),
    ("POST", "/api/auth/logout"): Op(status=204, tag="auth"),
    ("GET", "/api/auth/me"): Op(response=out.MeOut, tag="auth"),
    # chat
    ("GET", "/api/users"): Op(response=out.UserOut, many=True, tag="chat"),
    ("GET", "/api/channels"): Op(response=out.ChannelOut, many=True, tag="chat"),
    ("POST", "/api/channels"): Op(
        body=inputs.ChannelIn, response=out.ChannelOut, status=201, errors=(409,), tag="chat"
    ),
    ("GET", _CHANNEL): Op(response=out.ChannelOut, errors=(404,), tag="chat"),
    ("GET", _CHANNEL + "/members"): Op(response=out.UserOut, many=True, errors=(404,), tag="chat"),
    ("POST", _CHANNEL + "/members"): Op(
        body=inputs.MemberIn, response=out.MembershipOut, status=201, errors=(403, 404), tag="chat"
    ),
    ("DELETE", _CHANNEL + "/members/{user_id:uuid}"): Op(
        response=out.MembershipOut, errors=(403, 404), tag="chat"
    ),
    ("GET", _CHANNEL + "/messages"): Op(
        response=out.MessagePage, query=_page(50, 200, "message"), errors=(403, 404), tag="chat"
    ),
    ("POST", _CHANNEL + "/messages"): Op(
        body=inputs.MessageIn, response=out.MessageOut, status=201, errors=(403, 404), tag="chat"
    ),
    # admin
    ("GET", "/api/admin/daemons"): Op(
        "admin", response=out.DaemonStatusOut, many=True, tag="admin"
    ),
    ("GET", _DAEMON): Op("admin", response=out.DaemonStatusOut, errors=(404,), tag="admin"),
    ("POST", _DAEMON + "/{action:str}"): Op(
        "admin",
        response=out.DaemonStatusOut,
        path_enums=(("action", _DAEMON_ACTIONS),),
        errors=(404, 409),
        tag="admin",
    ),
    ("GET", "/api/admin/events"): Op(
        "admin",
        response=out.EventPage,
        query=(
            Query("orchestrator_id", {"type": "string", "format": "uuid"}, "one daemon only"),
            *_page(100, 500, "event"),
        ),
        errors=(404,),
        tag="admin",
    ),
    ("POST", "/api/admin/orchestrators"): Op(
        "admin", inputs.OrchestratorIn, out.OrchestratorOut, status=201, errors=(409,), tag="admin"
    ),
    ("GET", _ORCHESTRATOR): Op("admin", response=out.OrchestratorOut, errors=(404,), tag="admin"),
    ("PUT", _ORCHESTRATOR + "/charter"): Op(
        "admin", _CHARTER, out.OrchestratorOut, errors=(404,), tag="admin"
    ),
    # runtime
    ("GET", "/api/runtime/status"): Op("admin", response=out.RuntimeStatusOut, tag="runtime"),
    ("GET", "/healthz"): Op("none", response=out.HealthOut, tag="runtime"),
    ("GET", "/readyz"): Op("none", response=out.ReadyOut, errors=(503,), tag="runtime"),
    ("GET", "/metrics"): Op("none", media_type=_TEXT, tag="runtime"),
    # this description
    ("GET", "/openapi.json"): Op("none", tag="docs"),
    ("GET", "/docs"): Op("none", media_type="text/html", tag="docs"),
    ("GET", "/docs/docs.css"): Op("none", media_type="text/css", tag="docs"),
}
