"""Every HTTP error is JSON: `{"error": {"code", "message"}}` with the matching status.
Our errors carry their own status and code; Starlette's (unknown route, wrong method, body
too large) are translated; anything else is a logged 500 that reveals nothing."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from neolith_orchestrator.errors import AuthenticationFailed, OrchestratorError

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


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


async def _orchestrator_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OrchestratorError)
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(retry_after)))
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    if exc.status_code >= 500:
        _log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return error_response(exc.status_code, exc.code, exc.message, headers)


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
