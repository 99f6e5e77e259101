"""A socket is closed when its session expires — by a timer armed for the earliest expiry,
not at the next session sweep, up to a minute later."""

from __future__ import annotations

import pytest

from neolith_orchestrator.config import Settings
from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live, e2e_settings
from tests.support.seed import Org
from tests.support.waiting import eventually

TTL_MS = 5_000


@pytest.fixture
def app_settings(database_url: str) -> Settings:
    return e2e_settings(database_url, auth_session_ttl=TTL_MS)


async def test_an_expired_sessions_socket_is_closed(live: Live, acme: Org) -> None:
    pat = await login(live.http, "pat@acme.test")
    async with connected(live.url, pat) as socket:
        assert socket.sio.connected
        # Bounded well under the session sweep's 60 s sleep, which used to close it.
        await eventually(lambda: not socket.sio.connected, within=20)
        assert live.ctx.realtime.connections == 0
        assert (await live.http.get("/api/auth/me", headers=bearer(pat))).status_code == 401
    # Another login later arms the timer again (the first deadline has passed).
    again = await login(live.http, "pat@acme.test")
    async with connected(live.url, again) as socket:
        await eventually(lambda: not socket.sio.connected, within=20)
