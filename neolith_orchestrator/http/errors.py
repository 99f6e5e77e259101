"""Every HTTP error is JSON: `{"error": {"code", "message"}}` with the matching status;
validation errors (422) add `details`, one `{"field", "message"}` per problem. Our errors
carry their own status and code (and `Retry-After` from any error's `retry_after`);
Starlette's (unknown route, wrong method, body too large) are translated; anything else is a
logged 500 that reveals nothing."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from neolith_orchestrator.errors import (
    AuthenticationFailed,
    OrchestratorError,
    Unavailable,
    ValidationFailed,
)

_log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


# The services' convention for a field's error: "name: what is wrong" (joined by "; ").
_FIELD_MESSAGE = re.compile(r"^([A-Za-z_][\w.\[\]-]*): (.+)$", re.DOTALL)


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    details: list[dict[str, str]] | None = None,
) -> JSONResponse:
    error: dict[str, object] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def validation_details(exc: ValidationFailed) -> list[dict[str, str]]:
    """Per-field problems: the error's own `details` when it has them, else read from the
    services' "field: message" wording (anything else is about the whole payload)."""
    details = getattr(exc, "details", None)
    if isinstance(details, list):
        return details
    out = []
    for part in exc.message.split("; "):
        match = _FIELD_MESSAGE.match(part)
        field, message = match.groups() if match else ("payload", part)
        out.append({"field": field, "message": message})
    return out


async def _orchestrator_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OrchestratorError)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    # An outage is logged once when it starts and once when it ends (db/outage.py), not
    # once per request it refuses.
    if exc.status_code >= 500 and not isinstance(exc, Unavailable):
        _log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    details = validation_details(exc) if isinstance(exc, ValidationFailed) else None
    return error_response(exc.status_code, exc.code, exc.message, headers, details=details)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    _log.error("%s %s crashed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal server error")


EXCEPTION_HANDLERS: dict[Any, Any] = {
    OrchestratorError: _orchestrator_error,
    HTTPException: _http_error,
    Exception: _server_error,
}
