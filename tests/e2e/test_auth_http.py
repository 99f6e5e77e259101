"""Auth over HTTP and Socket.IO against a real server: tokens, logout, the uniform 401,
throttling with Retry-After per account and per address, socket authentication, expiry and
the return of daemons after a restart."""

from __future__ import annotations

import httpx
import pytest
import socketio

from neolith_orchestrator.auth.throttle import ADDRESS_FAILURE_FACTOR
from neolith_orchestrator.db.engine import Database
from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live, e2e_settings, running
from tests.support.seed import PASSWORD, Org
from tests.support.waiting import eventually


async def test_login_me_logout(live: Live, acme: Org) -> None:
    response = await live.http.post(
        "/api/auth/login", json={"email": "admin@acme.test", "password": PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["user"] == {
        "id": str(acme.admin.id),
        "organization_id": str(acme.org.id),
        "email": "admin@acme.test",
        "name": "Admin",
        "handle": "admin",
        "is_orchestrator": False,
        "is_admin": True,
    }
    headers = bearer(body["token"])
    assert (await live.http.get("/api/auth/me", headers=headers)).status_code == 200
    assert (await live.http.post("/api/auth/logout", headers=headers)).status_code == 204
    after = await live.http.get("/api/auth/me", headers=headers)
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == "Bearer"
    assert after.json()["error"]["code"] == "unauthenticated"


async def test_unknown_email_and_wrong_password_get_the_same_401(live: Live, acme: Org) -> None:
    unknown = await live.http.post(
        "/api/auth/login", json={"email": "ghost@acme.test", "password": PASSWORD}
    )
    wrong = await live.http.post(
        "/api/auth/login", json={"email": "pat@acme.test", "password": "wrong password"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}, bearer("nlo_forged")],
)
async def test_requests_without_a_valid_token_get_401(
    live: Live, acme: Org, headers: dict[str, str]
) -> None:
    response = await live.http.get("/api/channels", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "payload",
    [
        None,
        b"{not json",
        [],
        {"email": "pat@acme.test"},
        {"email": 7, "password": PASSWORD},
        {"email": "pat@acme.test", "password": ["x"]},
    ],
)
async def test_malformed_logins_get_422(live: Live, acme: Org, payload: object) -> None:
    if isinstance(payload, bytes) or payload is None:
        response = await live.http.post("/api/auth/login", content=payload or b"")
    else:
        response = await live.http.post("/api/auth/login", json=payload)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_repeated_failures_are_throttled_per_account(database_url: str, acme: Org) -> None:
    async with running(e2e_settings(database_url, auth_max_failures=3)) as live:
        for _ in range(3):
            response = await live.http.post(
                "/api/auth/login", json={"email": "pat@acme.test", "password": "guess"}
            )
            assert response.status_code == 401
        # Another address, the right password: the account itself is throttled.
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=live.url, transport=transport) as other:
            throttled = await other.post(
                "/api/auth/login", json={"email": "pat@acme.test", "password": PASSWORD}
            )
            assert throttled.status_code == 429
            assert int(throttled.headers["retry-after"]) >= 1
            assert throttled.json()["error"]["code"] == "rate_limited"
            # Other accounts are fine.
            assert (await login(other, "admin@acme.test")).startswith("nlo_")


async def test_repeated_failures_are_throttled_per_address(database_url: str, acme: Org) -> None:
    async with running(e2e_settings(database_url, auth_max_failures=2)) as live:
        for i in range(2 * ADDRESS_FAILURE_FACTOR):
            response = await live.http.post(
                "/api/auth/login", json={"email": f"user{i}@acme.test", "password": "guess"}
            )
            assert response.status_code == 401
        blocked = await live.http.post(
            "/api/auth/login", json={"email": "pat@acme.test", "password": PASSWORD}
        )
        assert blocked.status_code == 429
        assert "retry-after" in blocked.headers
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=live.url, transport=transport) as other:
            assert (await login(other, "pat@acme.test")).startswith("nlo_")


async def test_sockets_need_a_valid_token(live: Live, acme: Org) -> None:
    for token in (None, "nlo_forged"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            async with connected(live.url, token):
                pass
    assert live.ctx.realtime.connections == 0


async def test_logout_closes_the_sockets_of_that_session(live: Live, acme: Org) -> None:
    token = await login(live.http, "pat@acme.test")
    other = await login(live.http, "pat@acme.test")
    async with connected(live.url, token) as first, connected(live.url, other) as second:
        await live.http.post("/api/auth/logout", headers=bearer(token))
        await eventually(lambda: not first.sio.connected)
        assert second.sio.connected
        ack = await second.send({"channel_id": str(acme.channel_id), "content": "still here"})
        assert ack["ok"] is True


async def test_expired_sessions_stop_the_daemon_and_close_sockets(
    database_url: str, acme: Org
) -> None:
    async with running(e2e_settings(database_url, auth_session_ttl=1_500)) as live:
        token = await login(live.http, "ada@acme.test")
        pat = await login(live.http, "pat@acme.test")
        ada = acme.orchestrator_ids["ada"]
        assert live.ctx.manager.is_daemon_running(ada)
        async with connected(live.url, pat) as socket:
            await eventually(lambda: not live.ctx.manager.is_daemon_running(ada))
            await eventually(lambda: not socket.sio.connected)
        response = await live.http.get("/api/auth/me", headers=bearer(token))
        assert response.status_code == 401


async def test_daemons_come_back_after_a_restart(
    database_url: str, database: Database, acme: Org
) -> None:
    settings = e2e_settings(database_url)
    ada = acme.orchestrator_ids["ada"]
    async with running(settings) as live:
        await login(live.http, "ada@acme.test")
        assert live.ctx.manager.is_daemon_running(ada)
    async with running(settings) as live:
        assert live.ctx.manager.is_daemon_running(ada)
        admin = await login(live.http, "admin@acme.test")
        status = await live.http.get(f"/api/admin/daemons/{ada}", headers=bearer(admin))
        assert status.json()["status"] == "running"
