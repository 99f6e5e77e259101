"""`POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/auth/me`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from neolith_orchestrator.chat.schemas import user_out
from neolith_orchestrator.http import inputs
from neolith_orchestrator.http.deps import client_address, context, principal


async def login(request: Request) -> Response:
    """Exchange e-mail and password for a bearer token."""
    ctx = context(request)
    data = await inputs.body(request, inputs.LoginIn)
    result = await ctx.auth.login(data.email, data.password, client_address=client_address(request))
    return JSONResponse(
        {
            "token": result.token,
            "token_type": "bearer",
            "expires_at": result.principal.expires_at.isoformat(),
            "user": user_out(result.principal.user),
        }
    )


async def logout(request: Request) -> Response:
    """Revoke the caller's token and close the sockets opened with it."""
    ctx = context(request)
    caller = await principal(request)
    await ctx.auth.logout(caller)
    await ctx.realtime.disconnect_session(caller.session_id)
    return Response(status_code=204)


async def me(request: Request) -> Response:
    caller = await principal(request)
    return JSONResponse(
        {"user": user_out(caller.user), "expires_at": caller.expires_at.isoformat()}
    )


routes = [
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/auth/me", me, methods=["GET"]),
]
