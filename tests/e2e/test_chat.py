"""Channels, membership and messages over HTTP and Socket.IO; bad input gets a clear error
and changes nothing; events reach the right rooms only."""

from __future__ import annotations

from typing import Any

import pytest

from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import Message
from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live
from tests.support.seed import Org
from tests.support.waiting import eventually


async def _count_messages(database: Database) -> int:
    from sqlalchemy import func, select

    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


async def test_channels_membership_and_rooms(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    pat = await login(live.http, "pat@acme.test")
    async with connected(live.url, pat) as pat_socket:
        created = await live.http.post(
            "/api/channels", json={"name": "design", "topic": "UI"}, headers=bearer(admin)
        )
        assert created.status_code == 201
        channel = created.json()
        assert channel["name"] == "design" and channel["is_member"] is True
        listed = await live.http.get("/api/channels", headers=bearer(pat))
        assert {(c["name"], c["is_member"]) for c in listed.json()} == {
            ("general", True),
            ("design", False),
        }
        # Pat is not in the room yet: the admin's message does not reach Pat's socket.
        first = await live.http.post(
            f"/api/channels/{channel['id']}/messages",
            json={"content": "before pat"},
            headers=bearer(admin),
        )
        assert first.status_code == 201
        refused = await live.http.get(
            f"/api/channels/{channel['id']}/messages", headers=bearer(pat)
        )
        assert refused.status_code == 403
        joined = await live.http.post(
            f"/api/channels/{channel['id']}/members",
            json={"user_id": str(acme.person.id)},
            headers=bearer(pat),
        )
        assert joined.status_code == 201 and joined.json()["added"] is True
        again = await live.http.post(
            f"/api/channels/{channel['id']}/members",
            json={"user_id": str(acme.person.id)},
            headers=bearer(pat),
        )
        assert again.status_code == 200 and again.json()["added"] is False
        await live.http.post(
            f"/api/channels/{channel['id']}/messages",
            json={"content": "after pat"},
            headers=bearer(admin),
        )
        await eventually(lambda: [m for m in pat_socket.of("message:new")])
        assert [m["content"] for m in pat_socket.of("message:new")] == ["after pat"]
        members = await live.http.get(f"/api/channels/{channel['id']}/members", headers=bearer(pat))
        assert [u["handle"] for u in members.json()] == ["admin", "pat"]
        left = await live.http.delete(
            f"/api/channels/{channel['id']}/members/{acme.person.id}", headers=bearer(pat)
        )
        assert left.json()["removed"] is True
        directory = await live.http.get("/api/users", headers=bearer(pat))
        assert [u["handle"] for u in directory.json()] == ["ada", "admin", "pat"]


async def test_only_members_add_others_and_only_admins_remove_others(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    pat = await login(live.http, "pat@acme.test")
    channel = (
        await live.http.post("/api/channels", json={"name": "ops"}, headers=bearer(admin))
    ).json()
    add_other = await live.http.post(
        f"/api/channels/{channel['id']}/members",
        json={"user_id": str(acme.orchestrators["ada"].id)},
        headers=bearer(pat),
    )
    assert add_other.status_code == 403
    remove_other = await live.http.delete(
        f"/api/channels/{acme.channel_id}/members/{acme.admin.id}", headers=bearer(pat)
    )
    assert remove_other.status_code == 403


async def test_messages_page_backwards(live: Live, acme: Org) -> None:
    pat = await login(live.http, "pat@acme.test")
    url = f"/api/channels/{acme.channel_id}/messages"
    sent = []
    for i in range(5):
        response = await live.http.post(url, json={"content": f"m{i}"}, headers=bearer(pat))
        sent.append(response.json()["id"])
    page = (await live.http.get(url, params={"limit": 2}, headers=bearer(pat))).json()
    assert [m["id"] for m in page["items"]] == sent[3:]
    older = (
        await live.http.get(
            url, params={"limit": 2, "before": page["next_before"]}, headers=bearer(pat)
        )
    ).json()
    assert [m["id"] for m in older["items"]] == sent[1:3]
    last = (
        await live.http.get(url, params={"before": older["next_before"]}, headers=bearer(pat))
    ).json()
    assert [m["id"] for m in last["items"]] == sent[:1]
    assert last["next_before"] is None
    reply = await live.http.post(
        url, json={"content": "re", "reply_to_id": sent[0]}, headers=bearer(pat)
    )
    assert reply.json()["reply_to_id"] == sent[0]


BAD_HTTP: list[tuple[Any, int]] = [
    ({"content": ""}, 422),
    ({"content": "   "}, 422),
    ({"content": "x" * 8_001}, 422),
    ({"content": 5}, 422),
    ({"content": None}, 422),
    ({}, 422),
    (["content"], 422),
    ({"content": "hi", "reply_to_id": "not-a-uuid"}, 422),
    ({"content": "hi", "reply_to_id": "01a21004-0000-7000-8000-000000000000"}, 422),
]


@pytest.mark.parametrize(("payload", "status"), BAD_HTTP)
async def test_bad_messages_over_http_change_nothing(
    live: Live, acme: Org, database: Database, payload: Any, status: int
) -> None:
    pat = await login(live.http, "pat@acme.test")
    before = await _count_messages(database)
    response = await live.http.post(
        f"/api/channels/{acme.channel_id}/messages", json=payload, headers=bearer(pat)
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["message"]
    assert await _count_messages(database) == before


async def test_bad_requests_get_json_errors(live: Live, acme: Org) -> None:
    pat = await login(live.http, "pat@acme.test")
    cases = [
        ("POST", f"/api/channels/{acme.channel_id}/messages", b"{oops", 422),
        ("POST", "/api/channels/not-a-uuid/messages", b'{"content":"x"}', 404),
        ("POST", f"/api/channels/{acme.org.id}/messages", b'{"content":"x"}', 404),
        ("GET", f"/api/channels/{acme.channel_id}/messages?limit=0", None, 422),
        ("GET", f"/api/channels/{acme.channel_id}/messages?limit=abc", None, 422),
        ("GET", f"/api/channels/{acme.channel_id}/messages?before=zzz", None, 422),
        ("POST", "/api/channels", b'{"name": ""}', 422),
        ("POST", "/api/channels", b'{"name": "general"}', 409),
        ("DELETE", "/api/channels", None, 405),
        ("GET", "/api/nothing-here", None, 404),
        ("POST", "/api/channels", b"x" * (1024 * 1024 + 1), 413),
    ]
    for method, url, content, status in cases:
        response = await live.http.request(method, url, content=content, headers=bearer(pat))
        assert response.status_code == status, (method, url, response.text)
        # Validation errors (422) add `details`, one entry per field.
        extra = {"details"} if status == 422 else set()
        assert set(response.json()["error"]) == {"code", "message", *extra}


BAD_SOCKET: list[tuple[Any, str]] = [
    (None, "validation_error"),
    ("just text", "validation_error"),
    ([1, 2], "validation_error"),
    ({"content": "no channel"}, "validation_error"),
    ({"channel_id": "nope", "content": "x"}, "validation_error"),
    ({"channel_id": 12, "content": "x"}, "validation_error"),
    ({"channel_id": "{channel}", "content": ""}, "validation_error"),
    ({"channel_id": "{channel}", "content": 3}, "validation_error"),
    ({"channel_id": "{channel}", "content": "x" * 8_001}, "validation_error"),
    ({"channel_id": "01a21004-0000-7000-8000-000000000000", "content": "x"}, "not_found"),
]


async def test_bad_socket_messages_get_error_acks_and_change_nothing(
    live: Live, acme: Org, database: Database
) -> None:
    pat = await login(live.http, "pat@acme.test")
    before = await _count_messages(database)
    async with connected(live.url, pat) as client:
        for payload, code in BAD_SOCKET:
            if isinstance(payload, dict) and payload.get("channel_id") == "{channel}":
                payload = {**payload, "channel_id": str(acme.channel_id)}
            ack = await client.send(payload)
            assert ack["ok"] is False, payload
            assert ack["error"]["code"] == code, (payload, ack)
            assert ack["error"]["message"]
        assert client.sio.connected
        good = await client.send({"channel_id": str(acme.channel_id), "content": "fine"})
        assert good["ok"] is True
    assert await _count_messages(database) == before + 1


async def test_non_members_cannot_post(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    pat = await login(live.http, "pat@acme.test")
    channel = (
        await live.http.post("/api/channels", json={"name": "private"}, headers=bearer(admin))
    ).json()
    async with connected(live.url, pat) as client:
        ack = await client.send({"channel_id": channel["id"], "content": "let me in"})
    assert ack == {
        "ok": False,
        "error": {"code": "forbidden", "message": "you are not a member of this channel"},
    }


async def test_presence_of_people_reaches_their_organization(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    pat = await login(live.http, "pat@acme.test")
    async with connected(live.url, admin) as watcher:
        async with connected(live.url, pat):
            await eventually(lambda: watcher.of("presence:update"))
        await eventually(lambda: len(watcher.of("presence:update")) == 2)
    online, offline = watcher.of("presence:update")
    assert (online["user_id"], online["status"]) == (str(acme.person.id), "ONLINE")
    assert (offline["user_id"], offline["status"]) == (str(acme.person.id), "OFFLINE")
