"""Hostile bodies — JSON nested a thousand deep, lone UTF-16 surrogates, NUL characters —
are a 422 naming the field, over HTTP and Socket.IO alike, and change nothing. Every response
carries the security headers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import socketio
from sqlalchemy import func, select

from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import Channel, Message, User
from neolith_orchestrator.http.security import CONTENT_SECURITY_POLICY
from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live
from tests.support.seed import PASSWORD, Org

DEEP = ("[" * 1000 + "]" * 1000).encode()
SURROGATE = "\ud800"


async def _counts(database: Database) -> tuple[int, int, int]:
    async with database.transaction() as session:
        counts = [
            int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Message, Channel, User)
        ]
    return counts[0], counts[1], counts[2]


def _json(payload: Any) -> bytes:
    """JSON text with every non-ASCII character escaped, as a browser's JSON.stringify of a
    string holding a lone surrogate sends it ("\\ud800")."""
    return json.dumps(payload).encode()


def _refused(response: httpx.Response, field: str, words: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    fields = {d["field"]: d["message"] for d in error["details"]}
    assert field in fields, error
    assert words in fields[field], error
    assert field in error["message"]


async def test_deep_json_is_refused_on_every_body_route(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    before = await _counts(live.ctx.database)
    orchestrator_id = acme.orchestrator_ids["ada"]
    routes = [
        ("POST", "/api/auth/login", {}),
        ("POST", "/api/channels", bearer(admin)),
        ("POST", f"/api/channels/{acme.channel_id}/members", bearer(admin)),
        ("POST", f"/api/channels/{acme.channel_id}/messages", bearer(admin)),
        ("POST", "/api/admin/orchestrators", bearer(admin)),
        ("PUT", f"/api/admin/orchestrators/{orchestrator_id}/charter", bearer(admin)),
    ]
    for method, path, headers in routes:
        response = await live.http.request(method, path, content=DEEP, headers=headers)
        _refused(response, "payload", "nested deeper than 64 levels")
    # Deep inside an otherwise good object, too; 64 levels are still fine.
    nested: Any = "x"
    for _ in range(70):
        nested = {"a": nested}
    response = await live.http.post(
        "/api/channels", json={"name": "deep", "topic": nested}, headers=bearer(admin)
    )
    _refused(response, "payload", "nested deeper than 64 levels")
    assert await _counts(live.ctx.database) == before


async def test_surrogates_and_nul_are_refused_by_field(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    before = await _counts(live.ctx.database)
    messages = f"/api/channels/{acme.channel_id}/messages"
    charter = {"name": "Nova", "role": "Helper"}
    orchestrator = {"email": "nova@acme.test", "password": PASSWORD, "charter": charter}
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        (messages, {"content": f"hi {SURROGATE}"}, "content", "surrogate"),
        (messages, {"content": "hi\x00there"}, "content", "NUL"),
        ("/api/channels", {"name": f"chan{SURROGATE}"}, "name", "surrogate"),
        ("/api/channels", {"name": "chan", "topic": "a\x00b"}, "topic", "NUL"),
        ("/api/admin/orchestrators", {**orchestrator, "name": SURROGATE}, "name", "surrogate"),
        ("/api/admin/orchestrators", {**orchestrator, "name": "N\x00"}, "name", "NUL"),
    ]
    for path, payload, field, words in cases:
        response = await live.http.post(path, content=_json(payload), headers=bearer(admin))
        _refused(response, field, words)
    charter_path = f"/api/admin/orchestrators/{acme.orchestrator_ids['ada']}/charter"
    bad_charter = _json({**charter, "mission": f"x{SURROGATE}"})
    response = await live.http.put(charter_path, content=bad_charter, headers=bearer(admin))
    _refused(response, "mission", "surrogate")
    login_nul = await live.http.post(
        "/api/auth/login", json={"email": "admin@acme.test\x00", "password": PASSWORD}
    )
    _refused(login_nul, "email", "NUL")
    assert await _counts(live.ctx.database) == before
    ada = (await live.http.get(charter_path.rsplit("/", 1)[0], headers=bearer(admin))).json()
    assert ada["charter"]["mission"] == "Help."


async def test_hostile_socket_messages_are_refused(live: Live, acme: Org) -> None:
    pat = await login(live.http, "pat@acme.test")
    before = await _counts(live.ctx.database)
    async with connected(live.url, pat) as socket:
        channel_id = str(acme.channel_id)
        for content, words in ((f"a{SURROGATE}", "surrogate"), ("a\x00", "NUL")):
            ack = await socket.send({"channel_id": channel_id, "content": content})
            assert ack["ok"] is False, ack
            assert ack["error"]["code"] == "validation_error"
            assert ack["error"]["details"][0]["field"] == "content"
            assert words in ack["error"]["details"][0]["message"]
        nested: Any = "hi"
        for _ in range(70):
            nested = [nested]
        ack = await socket.send({"channel_id": channel_id, "content": "hi", "extra": nested})
        assert ack["ok"] is False
        assert ack["error"]["details"] == [
            {"field": "payload", "message": "JSON nested deeper than 64 levels"}
        ]
        # The socket still works for honest messages.
        ok = await socket.send({"channel_id": channel_id, "content": "still here"})
        assert ok["ok"] is True
    messages, channels, users = await _counts(live.ctx.database)
    assert (messages, channels, users) == (before[0] + 1, before[1], before[2])


class _Raw(str):
    """A payload sent as the JSON text it holds (Python's encoder cannot write 5,000 levels)."""


class _RawJson:
    @staticmethod
    def dumps(data: Any, **kwargs: Any) -> str:
        if isinstance(data, list) and data and isinstance(data[-1], _Raw):
            return "[" + ",".join([*(json.dumps(d) for d in data[:-1]), data[-1]]) + "]"
        return json.dumps(data, **kwargs)

    loads = staticmethod(json.loads)


class _RawPacket(socketio.packet.Packet):  # type: ignore[misc]
    json = _RawJson


async def test_a_socket_message_too_deep_to_decode_gets_an_answer(live: Live, acme: Org) -> None:
    pat = await login(live.http, "pat@acme.test")
    before = await _counts(live.ctx.database)
    sio = socketio.AsyncClient(reconnection=False, serializer=_RawPacket)
    await sio.connect(live.url, auth={"token": pat}, transports=["websocket"], wait_timeout=15)
    try:
        deep = _Raw("[" * 5000 + "]" * 5000)
        ack = await sio.call("message:send", deep, timeout=30)
        assert ack["ok"] is False
        assert ack["error"]["details"] == [
            {"field": "payload", "message": "JSON nested deeper than 64 levels"}
        ]
        fine = await sio.call(
            "message:send", {"channel_id": str(acme.channel_id), "content": "ok"}, timeout=30
        )
        assert fine["ok"] is True
    finally:
        await sio.disconnect()
        await sio.shutdown()
    assert (await _counts(live.ctx.database))[0] == before[0] + 1


async def test_security_headers_on_every_response(live: Live, acme: Org) -> None:
    logged_in = await live.http.post(
        "/api/auth/login", json={"email": "pat@acme.test", "password": PASSWORD}
    )
    responses = [
        logged_in,
        await live.http.post("/api/auth/login", json={"email": "pat@acme.test"}),
        await live.http.get("/api/auth/me"),
        await live.http.get("/healthz"),
        await live.http.get("/no/such/route"),
        await live.http.get("/socket.io/", params={"EIO": "4", "transport": "polling"}),
    ]
    for response in responses:
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", response.url
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for response in responses[:3]:
        assert response.headers["cache-control"] == "no-store", response.url
