"""CORS_ALLOWED_ORIGINS governs browsers on other origins, for HTTP and Socket.IO alike; the
server's own origin always works, and by default it is the only one."""

from __future__ import annotations

import httpx
import pytest
import socketio

from neolith_orchestrator.config import Settings
from tests.e2e.clients import login
from tests.e2e.conftest import Live, e2e_settings, running
from tests.support.seed import Org

ALLOWED = "https://chat.example.com"
REFUSED = "https://evil.example.net"


async def _preflight(http: httpx.AsyncClient, origin: str) -> httpx.Response:
    return await http.options(
        "/api/channels",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


async def _socket_connects(url: str, token: str, origin: str) -> bool:
    sio = socketio.AsyncClient(reconnection=False)
    try:
        await sio.connect(
            url,
            auth={"token": token},
            headers={"Origin": origin},
            transports=["websocket"],
            wait_timeout=15,
        )
    except socketio.exceptions.ConnectionError:
        return False
    finally:
        await sio.disconnect()
        await sio.shutdown()
    return True


async def test_listed_origin_is_allowed_and_others_refused(database_url: str, acme: Org) -> None:
    settings = e2e_settings(database_url, cors_allowed_origins=f" {ALLOWED} ,")
    async with running(settings) as live:
        allowed = await _preflight(live.http, ALLOWED)
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == ALLOWED
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        refused = await _preflight(live.http, REFUSED)
        assert refused.status_code == 400
        assert refused.json()["error"] == {
            "code": "cors_refused",
            "message": "Disallowed CORS origin",
        }
        assert "access-control-allow-origin" not in refused.headers

        token = await login(live.http, "pat@acme.test")
        simple = await live.http.get("/api/auth/me", headers=_auth(token, ALLOWED))
        assert simple.headers["access-control-allow-origin"] == ALLOWED
        other = await live.http.get("/api/auth/me", headers=_auth(token, REFUSED))
        assert "access-control-allow-origin" not in other.headers

        assert await _socket_connects(live.url, token, ALLOWED)
        assert not await _socket_connects(live.url, token, REFUSED)
        assert await _socket_connects(live.url, token, live.url)  # its own pages still work


async def test_by_default_only_the_same_origin(live: Live, acme: Org) -> None:
    assert live.app.settings.cors_origins == ()
    refused = await _preflight(live.http, ALLOWED)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    token = await login(live.http, "pat@acme.test")
    assert not await _socket_connects(live.url, token, ALLOWED)
    assert await _socket_connects(live.url, token, live.url)


def _auth(token: str, origin: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Origin": origin}


@pytest.mark.parametrize("value", ["chat.example.com", "https://a.example/path", "ftp://x.y"])
def test_a_malformed_origin_is_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="is not an origin"):
        Settings(_env_file=None, cors_allowed_origins=value)  # type: ignore[call-arg]
