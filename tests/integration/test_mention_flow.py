"""Mentions to replies: durable jobs, exactly one reply each, order, limits and notices."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from neolith_orchestrator.db.models import MentionJob, Message
from neolith_orchestrator.errors import ModelError, NotFound, PermissionDenied, ValidationFailed
from tests.integration.conftest import Stack
from tests.support.seed import Org, seed_org
from tests.support.waiting import eventually


async def _post(stack: Stack, org: Org, content: str, **kw: Any) -> dict[str, Any]:
    return await stack.manager.messenger.post(org.person, org.channel_id, content, **kw)


async def _replies_to(stack: Stack, message_id: str) -> list[Message]:
    async with stack.database.transaction() as session:
        rows = await session.scalars(
            select(Message).where(Message.reply_to_id == uuid.UUID(message_id)).order_by(Message.id)
        )
        return list(rows)


async def _jobs(stack: Stack) -> list[MentionJob]:
    async with stack.database.transaction() as session:
        return list(await session.scalars(select(MentionJob).order_by(MentionJob.id)))


async def test_a_mention_gets_one_streamed_reply(stack: Stack) -> None:
    org = await seed_org(stack.database)
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    mention = await _post(stack, org, "hello @Ada, what is up?")
    replies = await eventually(lambda: _replies_to(stack, mention["id"]))
    assert len(replies) == 1
    reply = replies[0]
    assert reply.author_id == org.orchestrators["ada"].id
    assert reply.content == "ada re: hello @Ada, what is up?"
    assert reply.meta["model"] == "scripted-1"
    assert reply.meta["usage"] == {"input_tokens": 10, "output_tokens": 5}
    deltas = [d for d in stack.emitter.of("message:delta") if d["reply_to_id"] == mention["id"]]
    assert "".join(d["delta"] for d in deltas) == reply.content
    new = [m["id"] for m in stack.emitter.of("message:new")]
    assert new == [mention["id"], str(reply.id)]
    jobs = await _jobs(stack)
    assert [(j.status, j.reply_message_id) for j in jobs] == [("done", reply.id)]
    request = stack.generator.calls[0]
    assert request.charter["name"] == "Ada"
    assert request.mention.author_name == "Pat"


async def test_mention_parsing_is_not_a_substring_match(stack: Stack) -> None:
    org = await seed_org(stack.database, handles=("ada", "adam"))
    for oid in org.orchestrator_ids.values():
        await stack.manager.start_daemon(oid)
    mention = await _post(stack, org, "ping @adam; mail ada@example.com; `@ada` > not me")
    await eventually(lambda: _replies_to(stack, mention["id"]))
    jobs = await _jobs(stack)
    assert [j.orchestrator_id for j in jobs] == [org.orchestrator_ids["adam"]]


async def test_several_orchestrators_each_answer_once(stack: Stack) -> None:
    org = await seed_org(stack.database, handles=("ada", "bob"))
    for oid in org.orchestrator_ids.values():
        await stack.manager.start_daemon(oid)
    mention = await _post(stack, org, "@ada and @bob and @ADA again: status?")

    async def both() -> list[Message]:
        replies = await _replies_to(stack, mention["id"])
        return replies if len(replies) >= 2 else []

    await eventually(both)
    await asyncio.sleep(0.3)  # a third (duplicate) reply would have landed by now
    replies = await _replies_to(stack, mention["id"])
    assert sorted(r.author_id for r in replies) == sorted(u.id for u in org.orchestrators.values())


async def test_orchestrators_mentioning_each_other_stop_at_the_chain_depth(stack: Stack) -> None:
    org = await seed_org(stack.database, handles=("ada", "bob"))
    for oid in org.orchestrator_ids.values():
        await stack.manager.start_daemon(oid)
    # Each scripted reply repeats the mention, so ada and bob would mention each other forever.
    await _post(stack, org, "@ada please ask @bob")

    async def depths() -> list[int]:
        async with stack.database.transaction() as session:
            return list(
                await session.scalars(
                    select(Message.chain_depth).where(Message.mention_job_id.is_not(None))
                )
            )

    limit = stack.settings.mention_max_chain_depth
    await eventually(lambda: _reached(depths(), limit))
    await asyncio.sleep(0.5)  # a reply past the limit would have landed by now
    found = await depths()
    # depth 1: ada and bob answer the person; depth 2, 3: they answer each other; then stop.
    assert max(found) == limit
    assert len(stack.generator.calls) == len(found)


async def _reached(depths: Any, limit: int) -> bool:
    return limit in await depths


async def test_an_orchestrator_never_answers_itself(stack: Stack) -> None:
    org = await seed_org(stack.database)
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    sent = await daemon.execute_action(
        {"type": "send_message", "channel_id": str(org.channel_id), "content": "I am @ada"}
    )
    await asyncio.sleep(0.3)
    assert await _replies_to(stack, sent["id"]) == []
    assert await _jobs(stack) == []


async def test_a_logged_out_orchestrator_gets_its_mentions_on_login(stack: Stack) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    mention = await _post(stack, org, "@ada are you there?")
    status = await stack.manager.orchestrator_status(org.org.id, oid)
    assert status["status"] == "stopped"
    assert status["pending_mentions"] == 1
    assert "wait" in status["note"]
    await stack.manager.on_user_login(org.orchestrators["ada"])
    replies = await eventually(lambda: _replies_to(stack, mention["id"]))
    assert len(replies) == 1


async def test_replies_follow_message_order_within_a_channel(stack: Stack) -> None:
    org = await seed_org(stack.database)
    posted = [await _post(stack, org, f"@ada question {i}") for i in range(4)]
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    await eventually(lambda: len(stack.generator.calls) == 4)
    assert [c.mention.content for c in stack.generator.calls] == [p["content"] for p in posted]


@pytest.mark.settings(daemon_max_concurrent_conversations=2)
async def test_concurrent_conversations_are_capped(stack: Stack) -> None:
    org = await seed_org(stack.database)
    gate = asyncio.Event()
    stack.generator.gate = gate
    async with stack.database.transaction() as session:
        from neolith_orchestrator.chat import service

        channels = [await service.create_channel(session, org.admin, f"room-{i}") for i in range(4)]
        for channel in channels:
            await service.add_member(session, org.org.id, channel.id, org.person.id)
            await service.add_member(session, org.org.id, channel.id, org.orchestrators["ada"].id)
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    for channel in channels:
        await stack.manager.messenger.post(org.person, channel.id, "@ada hi")
    await eventually(lambda: stack.generator.in_flight == 2)
    await asyncio.sleep(0.3)
    assert stack.generator.in_flight == 2
    assert daemon.get_health_status()["active_conversations"] == 2
    gate.set()
    await eventually(lambda: len(stack.generator.calls) == 4)
    await eventually(lambda: daemon.active_conversations == 0)
    assert stack.generator.max_in_flight == 2


async def test_a_model_failure_ends_in_a_visible_notice(stack: Stack) -> None:
    org = await seed_org(stack.database)
    stack.generator.failures.append(ModelError("the model is overloaded (HTTP 529)"))
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    mention = await _post(stack, org, "@ada help")
    replies = await eventually(lambda: _replies_to(stack, mention["id"]))
    assert len(replies) == 1
    assert replies[0].meta["system"] is True
    assert "could not answer" in replies[0].content and "529" in replies[0].content
    jobs = await _jobs(stack)
    assert jobs[0].status == "failed"
    assert jobs[0].last_error == "the model is overloaded (HTTP 529)"
    told = [e for e in stack.emitter.events if e[0] == "daemon:event"]
    assert told[0][1]["type"] == "daemon:reply-failed"
    assert told[0][1]["reason"] == "the model is overloaded (HTTP 529)"
    assert told[0][2] == f"admins:{org.org.id}"


@pytest.mark.settings(mention_replies_per_channel_per_minute=2)
async def test_runaway_guard_defers_mentions_and_tells_the_channel(stack: Stack) -> None:
    org = await seed_org(stack.database)
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    for i in range(3):
        await _post(stack, org, f"@ada number {i}")
    await eventually(lambda: len(stack.generator.calls) == 2)

    async def notices() -> list[Message]:
        async with stack.database.transaction() as session:
            rows = await session.scalars(
                select(Message).where(Message.meta["kind"].as_string() == "rate_limited")
            )
            return list(rows)

    told = await eventually(notices)
    assert len(told) == 1 and "limit of 2 per minute" in told[0].content
    jobs = await _jobs(stack)
    assert [j.status for j in jobs] == ["done", "done", "pending"]
    assert jobs[2].available_at > jobs[2].created_at


async def test_actions_go_through_the_same_checks_as_people(stack: Stack) -> None:
    org = await seed_org(stack.database)
    other = await seed_org(stack.database, slug="other", handles=())
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    sent = await daemon.send_response(
        {"channel_id": str(org.channel_id), "content": "noted", "reply_to_id": None}
    )
    assert sent["author_id"] == str(org.orchestrators["ada"].id)
    reacted = await daemon.execute_action(
        {"type": "react", "message_id": sent["id"], "emoji": "👍"}
    )
    assert reacted["reactions"] == {"👍": [str(org.orchestrators["ada"].id)]}
    status = await daemon.execute_action({"type": "update_status", "status": "reviewing"})
    assert status["status_message"] == "reviewing"
    left = await daemon.execute_action({"type": "leave_channel", "channel_id": str(org.channel_id)})
    assert left["changed"] is True
    with pytest.raises(PermissionDenied):
        await daemon.send_response({"channel_id": str(org.channel_id), "content": "still here?"})
    joined = await daemon.execute_action(
        {"type": "join_channel", "channel_id": str(org.channel_id)}
    )
    assert joined["changed"] is True
    with pytest.raises(NotFound):
        await daemon.execute_action({"type": "join_channel", "channel_id": str(other.channel_id)})
    with pytest.raises(ValidationFailed):
        await daemon.execute_action({"type": "teleport"})
    with pytest.raises(ValidationFailed):
        await daemon.send_response({"channel_id": str(org.channel_id), "content": "  "})
    async with stack.database.transaction() as session:
        count = await session.scalar(
            select(func.count()).select_from(Message).where(Message.channel_id == other.channel_id)
        )
    assert count == 0


async def test_an_edited_charter_reaches_the_next_reply(stack: Stack) -> None:
    from neolith_orchestrator.accounts.service import get_orchestrator, update_charter
    from neolith_orchestrator.ai.charter import parse_charter

    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    await stack.manager.start_daemon(oid)
    async with stack.database.transaction() as session:
        orchestrator, _ = await get_orchestrator(session, org.org.id, oid)
        await update_charter(
            session, orchestrator, parse_charter({"name": "Ada", "mission": "Audit."})
        )
    await stack.manager.refresh_identity(oid)
    mention = await _post(stack, org, "@ada what now?")
    await eventually(lambda: _replies_to(stack, mention["id"]))
    assert stack.generator.calls[-1].charter["mission"] == "Audit."
