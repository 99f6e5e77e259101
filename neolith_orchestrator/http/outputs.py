"""Response shapes, as pydantic models, for the OpenAPI schema (`openapi.py`).

The handlers build their JSON with the `*_out` functions (chat/schemas.py and friends); these
models describe those shapes for clients (DESIGN.md: add fields freely, never rename), and
the e2e tests check real responses against them. `extra="allow"`: a field added later is
not an error for anyone reading the schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Output(BaseModel):
    model_config = ConfigDict(extra="allow")


class FieldProblem(Output):
    field: str = Field(description="The field at fault, dotted for nested ones; `payload`.")
    message: str


class ErrorBody(Output):
    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`.")
    message: str
    details: list[FieldProblem] | None = Field(
        None, description="Validation errors (422) only: one entry per problem."
    )


class Error(Output):
    """Every error, whatever its status."""

    error: ErrorBody


class UserOut(Output):
    id: str
    organization_id: str
    email: str
    name: str
    handle: str | None
    is_orchestrator: bool
    is_admin: bool


class LoginOut(Output):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    token_type: str = "bearer"
    expires_at: str
    user: UserOut


class MeOut(Output):
    user: UserOut
    expires_at: str


class ChannelOut(Output):
    id: str
    organization_id: str
    name: str
    topic: str
    created_at: str
    is_member: bool | None = None


class MessageOut(Output):
    id: str
    organization_id: str
    channel_id: str
    author_id: str | None
    content: str
    reply_to_id: str | None
    created_at: str
    metadata: dict[str, Any]


class MessagePage(Output):
    items: list[MessageOut] = Field(description="Oldest first within the page.")
    next_before: str | None = Field(description="Pass as `before` for the previous page.")


class MembershipOut(Output):
    channel_id: str
    user_id: str
    added: bool | None = None
    removed: bool | None = None


class DaemonStatusOut(Output):
    orchestrator_id: str
    user_id: str
    name: str
    handle: str | None
    status: str = Field(description="stopped | initializing | running | paused | error | stopping")
    health: dict[str, Any] | None
    restart_count: int
    last_error: str | None


class EventOut(Output):
    id: str
    organization_id: str
    orchestrator_id: str | None
    type: str
    payload: dict[str, Any] | None
    created_at: str


class EventPage(Output):
    items: list[EventOut] = Field(description="Newest first.")
    next_before: str | None


class OrchestratorOut(Output):
    id: str
    organization_id: str
    user: UserOut
    discipline: str | None
    role: str | None
    capabilities: list[Any]
    status: str
    charter: dict[str, Any] | None
    created_at: str


class RuntimeStatusOut(Output):
    organization_id: str
    manager: dict[str, Any]
    generator: dict[str, Any]
    uptime_s: float
    sockets: int
    logged_in_orchestrators: int


class HealthOut(Output):
    status: str


class ReadyOut(Output):
    status: str = Field(description="ready | not_ready")
    database: bool
    manager: bool
