"""Browser-facing protections: security headers on every response, and CORS.

`SecurityHeaders` wraps the whole ASGI app (the HTTP API, Socket.IO's polling transport and
the 500s Starlette's outermost handler writes), so no response leaves without them. API
responses (`/api/...`) carry bearer tokens and tenant data: never stored by any cache.

CORS has one setting, `CORS_ALLOWED_ORIGINS`, applied to HTTP (Starlette's CORSMiddleware)
and Socket.IO (python-socketio's `cors_allowed_origins`) alike; empty means the page's own
origin only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neolith_orchestrator.http.errors import error_response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
}
_NO_STORE_PREFIXES = ("/api/",)


class SecurityHeaders:
    """ASGI middleware: adds `SECURITY_HEADERS` (and `Cache-Control: no-store` under /api/)
    to every HTTP response, keeping any such header a handler set itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(self._headers)
        if str(scope.get("path", "")).startswith(_NO_STORE_PREFIXES):
            extra.append((b"cache-control", b"no-store"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _CORS(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered in our JSON error shape."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        reason = bytes(response.body).decode()  # "Disallowed CORS origin, method"
        headers = {k: v for k, v in response.headers.items() if k.startswith("access-control")}
        return error_response(400, "cors_refused", reason, headers)


def cors_middleware(origins: Sequence[str]) -> Middleware:
    """CORS for the HTTP API: the listed origins may call it from a browser (bearer tokens,
    so no credentials mode); with none listed, only same-origin pages can."""
    return Middleware(
        _CORS,
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        expose_headers=["Retry-After"],
        max_age=600,
    )


def socketio_origins(origins: Sequence[str]) -> str | Callable[..., bool]:
    """python-socketio's `cors_allowed_origins` for the same setting: the listed origins and
    always the server's own (python-socketio drops same-origin when given a list)."""
    if "*" in origins:
        return "*"
    allowed = frozenset(origins)

    def allowed_origin(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None or origin in allowed:
            return True
        forwarded = str(environ.get("HTTP_X_FORWARDED_HOST", "")).split(",")[0].strip()
        hosts = {str(environ.get("HTTP_HOST", "")), forwarded} - {""}
        return urlsplit(origin).netloc in hosts

    return allowed_origin
