"""What handlers need from a request: the running app's context, the bearer-authenticated
caller, an admin, the client's address."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from neolith_orchestrator.auth.service import Principal
from neolith_orchestrator.context import AppContext
from neolith_orchestrator.errors import AuthenticationFailed, OrchestratorError, PermissionDenied


def context(request: HTTPConnection) -> AppContext:
    ctx = getattr(request.app.state, "context", None)
    if not isinstance(ctx, AppContext):
        raise OrchestratorError("the service is not running")
    return ctx


def bearer_token(request: HTTPConnection) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("an 'Authorization: Bearer <token>' header is required")
    return token.strip()


async def principal(request: HTTPConnection) -> Principal:
    """The caller, authenticated by bearer token (401 otherwise)."""
    return await context(request).auth.authenticate(bearer_token(request))


async def admin(request: HTTPConnection) -> Principal:
    """The caller, who must be an admin of their organization (403 otherwise)."""
    caller = await principal(request)
    if not caller.user.is_admin:
        raise PermissionDenied("organization admins only")
    return caller


def client_address(request: HTTPConnection) -> str | None:
    return request.client.host if request.client else None
