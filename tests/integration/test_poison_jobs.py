"""Poison jobs: a mention that keeps failing, or can never be answered, ends as a visible
failure notice and closes, while the daemon goes on answering its other channels. An
orchestrator never reads a channel it no longer belongs to. Expired claims come back."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from neolith_orchestrator.ai.anthropic_provider import AnthropicGenerator
from neolith_orchestrator.chat import service
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import MentionJob, Message
from neolith_orchestrator.db.types import utcnow
from tests.conftest import make_settings
from tests.integration.conftest import FAST, Stack, start_stack
from tests.support.model_server import ModelServer
from tests.support.seed import Org, seed_org
from tests.support.waiting import eventually


async def _answers(database: Database, message_id: str) -> list[Message]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(Message)
            .where(Message.reply_to_id == uuid.UUID(message_id))
            .order_by(Message.created_at)
        )
        return list(rows)


async def _job(database: Database, message_id: str) -> MentionJob:
    async with database.transaction() as session:
        job = await session.scalar(
            select(MentionJob).where(MentionJob.message_id == uuid.UUID(message_id))
        )
        assert job is not None
        return job


async def _lost_and_doubled(database: Database, mentions: list[dict[str, Any]]) -> tuple[int, int]:
    counts = [len(await _answers(database, m["id"])) for m in mentions]
    return counts.count(0), sum(1 for c in counts if c > 1)


async def _second_channel(database: Database, org: Org, name: str = "ops") -> uuid.UUID:
    async with database.transaction() as session:
        channel = await service.create_channel(session, org.admin, name)
        await service.add_member(session, org.org.id, channel.id, org.person.id)
        await service.add_member(session, org.org.id, channel.id, org.orchestrators["ada"].id)
        return channel.id


def _recorder(stack: Stack, event: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    stack.manager.on(event, seen.append)
    return seen


async def test_a_poison_job_fails_alone_after_its_attempts(stack: Stack) -> None:
    org = await seed_org(stack.database)
    ops = await _second_channel(stack.database, org)
    restarted = _recorder(stack, "daemon:restarted")
    crashed = _recorder(stack, "daemon:error")
    failed = _recorder(stack, "daemon:reply-failed")
    stack.generator.fail_when["poison"] = RuntimeError("cannot render this message")
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    post = stack.manager.messenger.post
    poison = await post(org.person, org.channel_id, "@ada poison")
    after = await post(org.person, org.channel_id, "@ada and after that?")
    others = [await post(org.person, ops, f"@ada question {i}") for i in range(3)]

    notice = await eventually(lambda: _answers(stack.database, poison["id"]))
    await eventually(lambda: _answers(stack.database, after["id"]))
    await eventually(lambda: _answers(stack.database, others[-1]["id"]))
    await asyncio.sleep(0.3)  # a doubled answer would have landed by now

    assert len(notice) == 1 and notice[0].meta["system"] is True
    assert notice[0].content == (
        "⚠ Ada could not answer this message: 3 attempts to answer it failed; "
        "the admins have been told"
    )
    job = await _job(stack.database, poison["id"])
    assert (job.status, job.attempts) == ("failed", 3)
    assert job.last_error == (
        "3 attempts to answer it failed (last: RuntimeError: cannot render this message)"
    )
    poison_calls = [c for c in stack.generator.calls if c.mention.content == "@ada poison"]
    assert len(poison_calls) == 3
    # Nothing else was lost or doubled, and the daemon never went down.
    assert await _lost_and_doubled(stack.database, [after, *others]) == (0, 0)
    assert (restarted, crashed) == ([], [])
    assert daemon.get_status() == "running"
    assert daemon.policy.restart_count == 0
    assert "RuntimeError: cannot render this message" in (daemon.last_error or "")
    assert [f["message_id"] for f in failed] == [poison["id"]]
    # The channel's order held: the mention after the poison was answered after it closed.
    after_reply = (await _answers(stack.database, after["id"]))[0]
    assert after_reply.created_at >= notice[0].created_at


async def test_a_reply_that_fails_once_is_answered_on_its_next_attempt(stack: Stack) -> None:
    org = await seed_org(stack.database)
    restarted = _recorder(stack, "daemon:restarted")
    stack.generator.failures.append(RuntimeError("a one-off bug"))
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    mention = await stack.manager.messenger.post(org.person, org.channel_id, "@ada hi")
    answers = await eventually(lambda: _answers(stack.database, mention["id"]))
    await asyncio.sleep(0.3)
    assert [a.content for a in await _answers(stack.database, mention["id"])] == ["ada re: @ada hi"]
    assert not answers[0].meta.get("system")
    job = await _job(stack.database, mention["id"])
    assert (job.status, job.attempts) == ("done", 2)
    assert restarted == [] and daemon.get_status() == "running"


async def test_leaving_a_channel_while_the_model_writes_ends_in_a_notice(stack: Stack) -> None:
    org = await seed_org(stack.database)
    gate = asyncio.Event()
    stack.generator.gate = gate
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    mention = await stack.manager.messenger.post(org.person, org.channel_id, "@ada hi")
    await eventually(lambda: stack.generator.in_flight == 1)
    async with stack.database.transaction() as session:
        await service.remove_member(
            session, org.org.id, org.channel_id, org.orchestrators["ada"].id
        )
    gate.set()
    notice = await eventually(lambda: _answers(stack.database, mention["id"]))
    assert len(notice) == 1 and notice[0].meta["system"] is True
    assert "not a member of this channel" in notice[0].content
    assert (await _job(stack.database, mention["id"])).status == "failed"
    assert daemon.get_status() == "running" and daemon.policy.restart_count == 0


# -- with the real SDK against the loopback model server -----------------------------------


@pytest.fixture
async def model_server() -> AsyncIterator[ModelServer]:
    async with ModelServer() as server:
        yield server


@pytest.fixture
async def model_stack(database_url: str, model_server: ModelServer) -> AsyncIterator[Stack]:
    settings = make_settings(
        database_url,
        **FAST,
        anthropic_api_key="test-key",
        anthropic_base_url=model_server.url,
        anthropic_model="claude-test",
        anthropic_retry_backoff_initial=10,
    )
    database = Database(settings)
    generator = AnthropicGenerator(settings)
    running = await start_stack(database, settings, generator)  # type: ignore[arg-type]
    try:
        yield running
    finally:
        await running.manager.shutdown()
        await generator.aclose()
        await database.dispose()


async def test_an_orchestrator_removed_from_a_channel_never_reads_it(
    model_stack: Stack, model_server: ModelServer
) -> None:
    stack = model_stack
    org = await seed_org(stack.database)
    ops = await _second_channel(stack.database, org)
    oid = org.orchestrator_ids["ada"]
    crashed = _recorder(stack, "daemon:error")
    post = stack.manager.messenger.post
    await post(org.person, org.channel_id, "the launch code is 0000")
    secret = await post(org.person, org.channel_id, "@ada what is the launch code?")
    async with stack.database.transaction() as session:
        await service.remove_member(
            session, org.org.id, org.channel_id, org.orchestrators["ada"].id
        )
    question = await post(org.person, ops, "@ada how are the deploys?")
    daemon = await stack.manager.start_daemon(oid)  # it logs in with both mentions waiting

    notice = await eventually(lambda: _answers(stack.database, secret["id"]))
    reply = await eventually(lambda: _answers(stack.database, question["id"]))
    assert len(notice) == 1 and notice[0].meta["system"] is True
    assert notice[0].content == (
        "⚠ Ada could not answer this message: it is no longer a member of this channel; "
        "the admins have been told"
    )
    assert (await _job(stack.database, secret["id"])).status == "failed"
    assert len(reply) == 1 and reply[0].content == "Hello from the test model."
    # One request, for the channel it is still in; nothing of the other reached the model.
    assert len(model_server.requests) == 1
    assert all("launch code" not in json.dumps(r.body) for r in model_server.requests)
    assert crashed == [] and daemon.get_status() == "running"
    # An admin restart finds nothing to crash on.
    await stack.manager.restart_daemon(oid)
    await asyncio.sleep(0.3)
    assert len(model_server.requests) == 1 and daemon.get_status() == "running"
    assert await _lost_and_doubled(stack.database, [question]) == (0, 0)


# -- claim expiry and dead holders ---------------------------------------------------------


async def test_a_running_daemon_takes_back_an_expired_claim(stack: Stack) -> None:
    org = await seed_org(stack.database)
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    # A job claimed by a holder that vanished while this daemon holds the lease: only
    # the claim's expiry can bring it back (the heartbeat sweep finds it and wakes us).
    async with stack.database.transaction() as session:
        posted = await service.post_message(
            session, stack.settings, org.person, org.channel_id, "@ada lost one"
        )
        job = posted.jobs[0]
        job.status = "claimed"
        job.claimed_by = "vanished-host"
        job.claim_expires_at = utcnow() - timedelta(seconds=1)
        job.attempts = 1
        mention_id = str(posted.message.id)
    answers = await eventually(lambda: _answers(stack.database, mention_id))
    assert len(answers) == 1 and not answers[0].meta.get("system")
    job = await _job(stack.database, mention_id)
    assert (job.status, job.attempts) == ("done", 2)  # the lost claim counted
    assert daemon.get_status() == "running"


@pytest.mark.settings(daemon_job_max_attempts=2)
async def test_a_job_whose_holders_died_too_often_ends_in_a_notice(stack: Stack) -> None:
    org = await seed_org(stack.database)
    mention = await stack.manager.messenger.post(org.person, org.channel_id, "@ada kills hosts")
    # Its last holder died with it claimed, after one earlier death.
    async with stack.database.transaction() as session:
        await session.execute(
            update(MentionJob)
            .where(MentionJob.message_id == uuid.UUID(mention["id"]))
            .values(
                status="claimed",
                claimed_by="dead-host",
                claim_expires_at=utcnow() + timedelta(minutes=5),
                attempts=2,
            )
        )
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    notice = await eventually(lambda: _answers(stack.database, mention["id"]))
    assert len(notice) == 1 and "2 attempts to answer it failed" in notice[0].content
    assert stack.generator.calls == []  # refused at the claim: the channel was never read
    assert (await _job(stack.database, mention["id"])).status == "failed"
