"""No silence: a mention of an orchestrator that cannot answer now (its daemon in ERROR,
paused, or logged out) is told why in the channel at once, exactly once, and is still
answered, once, when the daemon can again."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from neolith_orchestrator.chat import waiting
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import MentionJob, Message, Orchestrator
from neolith_orchestrator.errors import ModelPermanentError
from tests.integration.conftest import Stack
from tests.support.seed import Org, seed_org
from tests.support.waiting import eventually


async def _notices(database: Database, mention: dict[str, Any]) -> list[Message]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(Message)
            .where(Message.meta["mention_id"].as_string() == mention["id"])
            .order_by(Message.created_at)
        )
        return list(rows)


async def _replies(database: Database, mention: dict[str, Any]) -> list[Message]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(Message).where(
                Message.reply_to_id == uuid.UUID(mention["id"]),
                Message.mention_job_id.is_not(None),
            )
        )
        return list(rows)


async def _job(database: Database, mention: dict[str, Any]) -> MentionJob:
    async with database.transaction() as session:
        job = await session.scalar(
            select(MentionJob).where(MentionJob.message_id == uuid.UUID(mention["id"]))
        )
        assert job is not None
        return job


async def _row(stack: Stack, oid: uuid.UUID) -> Orchestrator:
    await stack.manager.runtime.journal.flush()
    async with stack.database.transaction() as session:
        row = await session.get(Orchestrator, oid)
        assert row is not None
        return row


async def _answered_once(stack: Stack, mention: dict[str, Any]) -> None:
    """Exactly one reply (none lost, none doubled) and still exactly one notice."""
    await eventually(lambda: _replies(stack.database, mention))
    await asyncio.sleep(0.3)  # a doubled reply or notice would have landed by now
    replies = await _replies(stack.database, mention)
    assert len(replies) == 1 and not replies[0].meta.get("system")
    assert len(await _notices(stack.database, mention)) == 1
    assert (await _job(stack.database, mention)).status == "done"


async def _post(stack: Stack, org: Org, text: str) -> dict[str, Any]:
    return await stack.manager.messenger.post(org.person, org.channel_id, text)


async def test_a_logged_out_orchestrator_is_said_to_be_offline(stack: Stack) -> None:
    org = await seed_org(stack.database)
    mention = await _post(stack, org, "@ada are you there?")
    # Told in the same breath as the post: pushed right after the mention itself.
    pushed = stack.emitter.of("message:new")
    assert pushed[0]["id"] == mention["id"]
    assert pushed[1]["content"] == "⏳ Ada is offline; it will answer at its next login."
    assert pushed[1]["metadata"]["kind"] == "orchestrator_offline"
    assert pushed[1]["reply_to_id"] is None  # about the mention, not its answer
    job = await _job(stack.database, mention)
    assert job.status == "pending" and job.notified_at is not None
    await stack.manager.on_user_login(org.orchestrators["ada"])
    await _answered_once(stack, mention)


async def test_a_paused_orchestrator_says_it_answers_when_resumed(stack: Stack) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    await stack.manager.start_daemon(oid)
    await stack.manager.pause_daemon(oid)
    assert (await _row(stack, oid)).status_reason == waiting.PAUSED
    mention = await _post(stack, org, "@ada quick one")
    notices = await _notices(stack.database, mention)
    assert [n.content for n in notices] == ["⏳ Ada is paused; it will answer when resumed."]
    assert await _replies(stack.database, mention) == []
    await stack.manager.resume_daemon(oid)
    await _answered_once(stack, mention)
    # Running again: a new mention gets its answer and no notice.
    later = await _post(stack, org, "@ada and now?")
    await eventually(lambda: _replies(stack.database, later))
    assert await _notices(stack.database, later) == []


async def test_mentions_queued_when_it_is_paused_are_told(stack: Stack) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    gate = asyncio.Event()
    stack.generator.gate = gate
    await stack.manager.start_daemon(oid)
    answering = await _post(stack, org, "@ada being answered")
    await eventually(lambda: stack.generator.in_flight == 1)
    queued = await _post(stack, org, "@ada queued behind it")
    await stack.manager.pause_daemon(oid)
    told = await _notices(stack.database, queued)
    assert [n.content for n in told] == ["⏳ Ada is paused; it will answer when resumed."]
    assert await _notices(stack.database, answering) == []  # its reply is under way
    gate.set()
    await eventually(lambda: _replies(stack.database, answering))
    assert await _replies(stack.database, queued) == []  # paused: it waits
    await stack.manager.resume_daemon(oid)
    await _answered_once(stack, queued)
    assert len(await _replies(stack.database, answering)) == 1


async def test_a_daemon_in_error_tells_later_mentions_why(stack: Stack) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    stack.generator.failures.append(ModelPermanentError("the model rejected the API key (401)"))
    daemon = await stack.manager.start_daemon(oid)
    first = await _post(stack, org, "@ada first")
    await eventually(lambda: daemon.get_status() == "error")
    assert (await _row(stack, oid)).status == "ERROR"
    later = await _post(stack, org, "@ada are you broken?")
    notices = await _notices(stack.database, later)
    assert [n.content for n in notices] == [
        "⏳ Ada can't answer right now: the model rejected the API key (401); the admins "
        "have been told. It will answer once it runs again."
    ]
    assert (await _job(stack.database, later)).status == "pending"
    # The first mention's failure notice is its answer; it is not told twice.
    assert await _notices(stack.database, first) == []
    await stack.manager.start_daemon(oid)  # an admin fixed the key
    await _answered_once(stack, later)


async def test_mentions_waiting_when_the_daemon_fails_for_good_are_told(stack: Stack) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    gate = asyncio.Event()
    stack.generator.gate = gate
    stack.generator.failures.append(ModelPermanentError("the model rejected the API key (401)"))
    daemon = await stack.manager.start_daemon(oid)
    first = await _post(stack, org, "@ada first")
    await eventually(lambda: stack.generator.in_flight == 1)
    queued = [await _post(stack, org, f"@ada queued {i}") for i in range(2)]
    assert [await _notices(stack.database, q) for q in queued] == [[], []]  # it was running
    gate.set()
    await eventually(lambda: daemon.get_status() == "error")
    for mention in queued:
        notices = await eventually(lambda m=mention: _notices(stack.database, m))
        assert len(notices) == 1 and "can't answer right now" in notices[0].content
    stack.generator.gate = None
    await stack.manager.start_daemon(oid)
    for mention in queued:
        await _answered_once(stack, mention)
    assert len(await _replies(stack.database, first)) == 1  # its failure notice


async def test_a_mention_is_told_once_whoever_tells_it(stack: Stack) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    ada = org.orchestrators["ada"]
    gate = asyncio.Event()
    stack.generator.gate = gate
    await stack.manager.start_daemon(oid)
    # Two mentions wait untold (it runs): one being answered, one queued behind it.
    mentions = [await _post(stack, org, "@ada one")]
    await eventually(lambda: stack.generator.in_flight == 1)
    mentions.append(await _post(stack, org, "@ada two"))

    async def tell() -> int:
        async with stack.database.transaction() as session:
            told = await waiting.tell_pending(session, oid, ada.id, "Ada", *waiting.failing("x"))
            return len(told)

    # Concurrent tellers in separate transactions: each mention is told by exactly one.
    assert sum(await asyncio.gather(*(tell() for _ in range(4)))) == 2
    assert await tell() == 0
    assert [len(await _notices(stack.database, m)) for m in mentions] == [1, 1]
    gate.set()
    for mention in mentions:
        await _answered_once(stack, mention)
