"""Idempotent posting: a client that re-sends a post after a lost acknowledgement (HTTP or
Socket.IO, one after the other or all at once) stores it once, gets the stored message
back, and gets one AI reply."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import MentionJob, Message
from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live
from tests.support.seed import Org
from tests.support.waiting import eventually


async def _count(database: Database, model: Any, *where: Any) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _replies(database: Database, message_id: str) -> int:
    return await _count(
        database,
        Message,
        Message.reply_to_id == uuid.UUID(message_id),
        Message.mention_job_id.is_not(None),
    )


def _url(org: Org) -> str:
    return f"/api/channels/{org.channel_id}/messages"


async def _settled_replies(database: Database, message_id: str) -> int:
    """The number of AI replies, once the first has landed and a second had time to."""
    await eventually(lambda: _replies(database, message_id))
    await asyncio.sleep(0.5)
    return await _replies(database, message_id)


async def test_a_re_sent_http_post_returns_the_stored_message(
    live: Live, acme: Org, database: Database
) -> None:
    await login(live.http, "ada@acme.test")
    pat = await login(live.http, "pat@acme.test")
    body = {"content": "@ada deploy status?", "client_id": "phone-7f3a"}
    first = await live.http.post(_url(acme), json=body, headers=bearer(pat))
    again = await live.http.post(_url(acme), json=body, headers=bearer(pat))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["client_id"] == "phone-7f3a"
    mention_id = first.json()["id"]
    assert await _count(database, Message, Message.client_id == "phone-7f3a") == 1
    assert await _count(database, MentionJob) == 1
    assert await _settled_replies(database, mention_id) == 1
    # A message without a client_id still shows the field, empty.
    plain = await live.http.post(_url(acme), json={"content": "hi"}, headers=bearer(pat))
    assert plain.status_code == 201 and plain.json()["client_id"] is None


async def test_concurrent_re_sends_store_once_and_get_one_reply(
    live: Live, acme: Org, database: Database
) -> None:
    await login(live.http, "ada@acme.test")
    pat = await login(live.http, "pat@acme.test")
    body = {"content": "@ada are the builds green?", "client_id": "retry-storm"}
    async with connected(live.url, pat) as socket:
        payload = {**body, "channel_id": str(acme.channel_id)}
        results = await asyncio.gather(
            *(live.http.post(_url(acme), json=body, headers=bearer(pat)) for _ in range(6)),
            *(socket.send(payload) for _ in range(6)),
        )
    http = [r for r in results if not isinstance(r, dict)]
    acks = [r for r in results if isinstance(r, dict)]
    ids = {r.json()["id"] for r in http} | {a["message"]["id"] for a in acks}
    assert len(ids) == 1, ids
    created = [r.status_code for r in http].count(201) + [a["created"] for a in acks].count(True)
    assert created == 1
    assert sorted({r.status_code for r in http}) <= [200, 201]
    assert all(a["ok"] for a in acks)
    assert await _count(database, Message, Message.client_id == "retry-storm") == 1
    assert await _count(database, MentionJob) == 1
    (mention_id,) = ids
    lost_or_doubled = await _settled_replies(database, mention_id)
    assert lost_or_doubled == 1


async def test_a_re_sent_socket_message_is_acknowledged_with_the_stored_one(
    live: Live, acme: Org, database: Database
) -> None:
    pat = await login(live.http, "pat@acme.test")
    async with connected(live.url, pat) as socket:
        payload = {"channel_id": str(acme.channel_id), "content": "lunch?", "client_id": "c1"}
        first = await socket.send(payload)
        again = await socket.send(payload)
        await eventually(lambda: socket.of("message:new"))
        await asyncio.sleep(0.2)
        assert [m["id"] for m in socket.of("message:new")] == [first["message"]["id"]]
    assert (first["created"], again["created"]) == (True, False)
    assert again["message"] == first["message"]
    assert await _count(database, Message) == 1


async def test_client_ids_are_per_author_and_channel(
    live: Live, acme: Org, database: Database
) -> None:
    pat = await login(live.http, "pat@acme.test")
    admin = await login(live.http, "admin@acme.test")
    other = await live.http.post("/api/channels", json={"name": "random"}, headers=bearer(pat))
    body = {"content": "same id", "client_id": "shared"}
    a = await live.http.post(_url(acme), json=body, headers=bearer(pat))
    b = await live.http.post(_url(acme), json=body, headers=bearer(admin))
    c = await live.http.post(
        f"/api/channels/{other.json()['id']}/messages", json=body, headers=bearer(pat)
    )
    assert [a.status_code, b.status_code, c.status_code] == [201, 201, 201]
    assert len({a.json()["id"], b.json()["id"], c.json()["id"]}) == 3
    assert await _count(database, Message, Message.client_id == "shared") == 3


@pytest.mark.parametrize(
    ("client_id", "problem"),
    [
        ("x" * 65, "at most 64 characters"),
        (42, "valid string"),
        ("", "at least 1 character"),
        (["a"], "valid string"),
    ],
)
async def test_a_bad_client_id_is_refused_by_name(
    live: Live, acme: Org, database: Database, client_id: Any, problem: str
) -> None:
    pat = await login(live.http, "pat@acme.test")
    body = {"content": "@ada hi", "client_id": client_id}
    refused = await live.http.post(_url(acme), json=body, headers=bearer(pat))
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "validation_error"
    assert "client_id" in error["message"] and problem in error["message"]
    async with connected(live.url, pat) as socket:
        ack = await socket.send({**body, "channel_id": str(acme.channel_id)})
    assert ack["ok"] is False and "client_id" in ack["error"]["message"]
    assert await _count(database, Message) == 0
    assert await _count(database, MentionJob) == 0
