"""Request payloads, for HTTP bodies and Socket.IO events alike. Strings must be strings
(no coercion from numbers); a bad payload becomes `InvalidInput` (a `ValidationFailed` with
`details`) naming each field. Hostile JSON (too deep, NUL, lone surrogates) is refused by
`decoding` before any model sees it."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from neolith_orchestrator.http.decoding import InvalidInput, check_tree, decode_json, field_error

Model = TypeVar("Model", bound=BaseModel)
MAX_BODY_BYTES = 1024 * 1024


class Input(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LoginIn(Input):
    email: StrictStr = Field(min_length=1, max_length=320)
    password: StrictStr = Field(min_length=1, max_length=1_024)


class ChannelIn(Input):
    name: StrictStr
    topic: StrictStr = ""


class MemberIn(Input):
    user_id: uuid.UUID


class MessageIn(Input):
    # Length and emptiness are the chat service's rules (one message of error per rule).
    content: StrictStr
    reply_to_id: uuid.UUID | None = None
    # Chosen by the client; a re-send with the same one returns the stored message.
    client_id: StrictStr | None = Field(default=None, min_length=1, max_length=64)


class SocketMessageIn(MessageIn):
    channel_id: uuid.UUID


class OrchestratorIn(Input):
    email: StrictStr
    name: StrictStr
    password: StrictStr
    handle: StrictStr | None = None
    is_admin: StrictBool = False
    charter: dict[str, Any]


def parse(model: type[Model], data: Any) -> Model:
    """Validate `data` (a decoded JSON object) as `model`."""
    if not isinstance(data, dict):
        raise field_error("payload", "must be a JSON object")
    check_tree(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]) or "payload", "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
        raise InvalidInput(problems) from exc


async def _read_body(request: Request) -> bytes:
    # Our own limit rather than Starlette's, whose 413 is plain text, not our JSON error.
    too_large = HTTPException(413, f"the request body exceeds {MAX_BODY_BYTES} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise too_large
    return bytes(body)


async def read_json(request: Request) -> Any:
    """The request body decoded as JSON (a clear 422 when it is not, or is hostile)."""
    body = await _read_body(request)
    if not body.strip():
        raise field_error("payload", "a JSON body is required")
    return decode_json(body)


async def body(request: Request, model: type[Model]) -> Model:
    return parse(model, await read_json(request))


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise field_error(name, f"must be an integer between {low} and {high}")
    return value


def query_uuid(request: Request, name: str) -> uuid.UUID | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise field_error(name, "must be a UUID") from exc


def path_uuid(request: Request, name: str) -> uuid.UUID:
    value = request.path_params[name]
    assert isinstance(value, uuid.UUID)  # the route's `:uuid` convertor made it one
    return value
