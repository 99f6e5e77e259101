"""The whole flow over real sockets: an orchestrator logs in and its daemon comes online,
a person mentions it over Socket.IO, the reply streams into the channel room and lands as
`message:new`, the orchestrator logs out and its daemon goes offline."""

from __future__ import annotations

from typing import Any

from neolith_orchestrator.ai.offline import OFFLINE_LABEL
from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live, e2e_settings, running
from tests.support.model_server import ModelServer, ok
from tests.support.seed import Org
from tests.support.waiting import eventually


async def _daemon(live: Live, admin_token: str, handle: str) -> dict[str, Any]:
    response = await live.http.get("/api/admin/daemons", headers=bearer(admin_token))
    assert response.status_code == 200
    (status,) = [d for d in response.json() if d["handle"] == handle]
    assert isinstance(status, dict)
    return status


async def test_mention_round_trip_through_the_model(database_url: str, acme: Org) -> None:
    async with ModelServer() as model:
        model.script(ok("Happy to help, Pat.", chunks=3))
        settings = e2e_settings(
            database_url, anthropic_api_key="test-key", anthropic_base_url=model.url
        )
        async with running(settings) as live:
            admin_token = await login(live.http, "admin@acme.test")
            pat_token = await login(live.http, "pat@acme.test")
            assert (await _daemon(live, admin_token, "ada"))["status"] == "stopped"
            async with (
                connected(live.url, pat_token) as pat,
                connected(live.url, admin_token) as admin,
            ):
                ada_token = await login(live.http, "ada@acme.test")

                async def online() -> bool:
                    return (await _daemon(live, admin_token, "ada"))["status"] == "running"

                await eventually(online)
                await eventually(
                    lambda: any(s["status"] == "running" for s in admin.of("daemon:status"))
                )
                await eventually(
                    lambda: any(p["status"] == "ONLINE" for p in pat.of("presence:update"))
                )
                assert pat.of("daemon:status") == []  # admins only

                ack = await pat.send(
                    {"channel_id": str(acme.channel_id), "content": "@ada can you help?"}
                )
                assert ack["ok"] is True, ack
                mention = ack["message"]
                assert mention["author_id"] == str(acme.person.id)
                assert mention["metadata"]["mentions"] == [str(acme.orchestrator_ids["ada"])]

                def reply() -> dict[str, Any] | None:
                    for message in pat.of("message:new"):
                        if message["reply_to_id"] == mention["id"]:
                            return message  # type: ignore[no-any-return]
                    return None

                answer = await eventually(reply)
                assert answer["author_id"] == str(acme.orchestrators["ada"].id)
                assert answer["content"] == "Happy to help, Pat."
                deltas = [d for d in pat.of("message:delta") if d["reply_to_id"] == mention["id"]]
                assert "".join(d["delta"] for d in deltas) == "Happy to help, Pat."
                assert [d["seq"] for d in deltas] == sorted(d["seq"] for d in deltas)
                # The mention reached the model with the charter and the question.
                assert "@ada can you help?" in str(model.requests[-1].body["messages"])

                page = await live.http.get(
                    f"/api/channels/{acme.channel_id}/messages", headers=bearer(pat_token)
                )
                assert [m["id"] for m in page.json()["items"]][-2:] == [
                    mention["id"],
                    answer["id"],
                ]

                logout = await live.http.post("/api/auth/logout", headers=bearer(ada_token))
                assert logout.status_code == 204

                async def offline() -> bool:
                    return (await _daemon(live, admin_token, "ada"))["status"] == "stopped"

                await eventually(offline)
                await eventually(
                    lambda: any(p["status"] == "OFFLINE" for p in pat.of("presence:update"))
                )


async def test_http_mention_answered_by_the_offline_responder(live: Live, acme: Org) -> None:
    pat_token = await login(live.http, "pat@acme.test")
    await login(live.http, "ada@acme.test")
    async with connected(live.url, pat_token) as pat:
        posted = await live.http.post(
            f"/api/channels/{acme.channel_id}/messages",
            json={"content": "hello @ada"},
            headers=bearer(pat_token),
        )
        assert posted.status_code == 201, posted.text
        mention_id = posted.json()["id"]
        answer = await eventually(
            lambda: [m for m in pat.of("message:new") if m["reply_to_id"] == mention_id]
        )
        assert answer[0]["content"].startswith(OFFLINE_LABEL)
        assert pat.of("message:new")[0]["id"] == mention_id


async def test_a_long_streamed_reply_reaches_the_channel_in_few_pushes(
    database_url: str, acme: Org
) -> None:
    text = " ".join(f"word{i}" for i in range(75))
    async with ModelServer() as model:
        # 75 pieces over about 0.4 s, as a real model streams a short answer.
        model.script(ok(text, chunks=75, delay=0.005))
        settings = e2e_settings(
            database_url, anthropic_api_key="test-key", anthropic_base_url=model.url
        )
        async with running(settings) as live:
            pat_token = await login(live.http, "pat@acme.test")
            await login(live.http, "ada@acme.test")
            async with connected(live.url, pat_token) as pat:
                ack = await pat.send({"channel_id": str(acme.channel_id), "content": "@ada go"})
                assert ack["ok"] is True, ack
                mention = ack["message"]

                def answer() -> list[dict[str, Any]]:
                    return [m for m in pat.of("message:new") if m["reply_to_id"] == mention["id"]]

                (reply,) = await eventually(answer)
                deltas = [d for d in pat.of("message:delta") if d["reply_to_id"] == mention["id"]]
    assert reply["content"] == text
    assert "".join(d["delta"] for d in deltas) == text  # what the reader saw, unchanged
    # The first piece alone and at once, then at most one push per 50 ms, not one per piece.
    first = deltas[0]["delta"]
    assert text.startswith(first) and len(first) <= len(text) // 75 + 1
    assert 2 <= len(deltas) < 75 // 3
