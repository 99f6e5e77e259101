"""No tenant sees or touches another's data: an admin of acme gets 404 for every id of
globex, exactly as for ids that do not exist, and globex's sockets hear nothing of acme."""

from __future__ import annotations

import pytest

from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live
from tests.support.seed import PASSWORD, Org
from tests.support.waiting import eventually


@pytest.fixture
async def acme_admin(live: Live, acme: Org, globex: Org) -> str:
    return await login(live.http, "admin@acme.test")


async def test_every_id_of_another_organization_is_not_found(
    live: Live, acme: Org, globex: Org, acme_admin: str
) -> None:
    theirs = globex.orchestrator_ids["max"]
    channel = globex.channel_id
    charter = {"name": "Hijacked"}
    cases = [
        ("GET", f"/api/admin/daemons/{theirs}", None),
        *[("POST", f"/api/admin/daemons/{theirs}/{a}", None) for a in ("start", "stop")],
        *[("POST", f"/api/admin/daemons/{theirs}/{a}", None) for a in ("restart", "pause")],
        ("POST", f"/api/admin/daemons/{theirs}/resume", None),
        ("GET", f"/api/admin/events?orchestrator_id={theirs}", None),
        ("GET", f"/api/admin/orchestrators/{theirs}", None),
        ("PUT", f"/api/admin/orchestrators/{theirs}/charter", charter),
        ("GET", f"/api/channels/{channel}", None),
        ("GET", f"/api/channels/{channel}/messages", None),
        ("POST", f"/api/channels/{channel}/messages", {"content": "hello"}),
        ("GET", f"/api/channels/{channel}/members", None),
        ("POST", f"/api/channels/{channel}/members", {"user_id": str(acme.admin.id)}),
        ("DELETE", f"/api/channels/{channel}/members/{globex.person.id}", None),
        # Their user into our channel.
        ("POST", f"/api/channels/{acme.channel_id}/members", {"user_id": str(globex.person.id)}),
    ]
    for method, url, payload in cases:
        response = await live.http.request(method, url, json=payload, headers=bearer(acme_admin))
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert not live.ctx.manager.is_daemon_running(theirs)
    globex_admin = await login(live.http, "admin@globex.test")
    mine = await live.http.get(f"/api/admin/orchestrators/{theirs}", headers=bearer(globex_admin))
    assert mine.json()["charter"]["name"] == "Max"


async def test_lists_show_only_the_own_organization(
    live: Live, acme: Org, globex: Org, acme_admin: str
) -> None:
    await login(live.http, "max@globex.test")  # globex's daemon runs and logs events
    daemons = (await live.http.get("/api/admin/daemons", headers=bearer(acme_admin))).json()
    assert [d["handle"] for d in daemons] == ["ada"]
    channels = (await live.http.get("/api/channels", headers=bearer(acme_admin))).json()
    assert [c["id"] for c in channels] == [str(acme.channel_id)]
    users = (await live.http.get("/api/users", headers=bearer(acme_admin))).json()
    assert {u["organization_id"] for u in users} == {str(acme.org.id)}
    events = (await live.http.get("/api/admin/events", headers=bearer(acme_admin))).json()
    assert all(e["organization_id"] == str(acme.org.id) for e in events["items"])


async def test_sockets_hear_only_their_organization(
    live: Live, acme: Org, globex: Org, acme_admin: str
) -> None:
    pat = await login(live.http, "pat@acme.test")
    spy = await login(live.http, "admin@globex.test")
    async with connected(live.url, pat) as acme_socket, connected(live.url, spy) as globex_socket:
        refused = await globex_socket.send({"channel_id": str(acme.channel_id), "content": "hi"})
        assert refused["ok"] is False and refused["error"]["code"] == "not_found"
        await acme_socket.send({"channel_id": str(acme.channel_id), "content": "@ada secret"})
        await login(live.http, "ada@acme.test")
        await eventually(
            lambda: [m for m in acme_socket.of("message:new") if m["reply_to_id"] is not None]
        )
        # Acme's presence, messages, deltas and daemon status went to acme's rooms only.
        assert any(e == "message:delta" for e, _ in acme_socket.events)
        assert globex_socket.events == []


async def test_an_orchestrator_is_not_reachable_from_another_org(
    live: Live, acme: Org, globex: Org
) -> None:
    """A globex person mentioning @ada in globex's channel creates no job for acme's ada."""
    await login(live.http, "ada@acme.test")
    globex_pat = await login(live.http, "pat@globex.test", PASSWORD)
    posted = await live.http.post(
        f"/api/channels/{globex.channel_id}/messages",
        json={"content": "@ada are you there?"},
        headers=bearer(globex_pat),
    )
    assert posted.status_code == 201
    assert "mentions" not in posted.json()["metadata"]
