"""Supervision: crashes restart at once then back off, give up past the limit, permanent
failures stop for good, stop/restart never lose or double a reply.

A worker crashes when its surroundings fail (the database, the network): the scripted model
raises a connection error to stand for that. A reply that fails for its own reasons is that
job's failure, not a crash (tests/integration/test_poison_jobs.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from neolith_orchestrator.daemons.manager import DaemonManager
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import DaemonEvent, MentionJob, Message, Orchestrator
from neolith_orchestrator.errors import LeaseHeld, ModelPermanentError
from tests.conftest import make_settings
from tests.integration.conftest import FAST, Stack, start_stack
from tests.support.generators import ScriptedGenerator
from tests.support.seed import Org, seed_org
from tests.support.waiting import eventually


async def _answers(database: Database, message_id: str) -> list[Message]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(Message).where(Message.reply_to_id == uuid.UUID(message_id))
        )
        return list(rows)


async def _job_statuses(database: Database) -> list[str]:
    async with database.transaction() as session:
        return list(await session.scalars(select(MentionJob.status).order_by(MentionJob.id)))


def _lost_connection(what: str = "injected") -> ConnectionResetError:
    return ConnectionResetError(f"{what}: the connection was reset")


def _recorder(manager: DaemonManager, event: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    manager.on(event, seen.append)
    return seen


async def _mention(stack: Stack, org: Org, text: str = "@ada status?") -> dict[str, Any]:
    return await stack.manager.messenger.post(org.person, org.channel_id, text)


async def test_a_crash_mid_reply_is_restarted_at_once_and_answered_once(stack: Stack) -> None:
    org = await seed_org(stack.database)
    restarted = _recorder(stack.manager, "daemon:restarted")
    errors = _recorder(stack.manager, "daemon:error")
    stack.generator.failures.append(_lost_connection())
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    mention = await _mention(stack, org)
    answers = await eventually(lambda: _answers(stack.database, mention["id"]))
    await asyncio.sleep(0.3)
    answers = await _answers(stack.database, mention["id"])
    assert len(answers) == 1 and not answers[0].meta.get("system")
    assert len(stack.generator.calls) == 2
    assert errors[0]["error"] == "ConnectionResetError: injected: the connection was reset"
    assert restarted == [
        {"orchestrator_id": str(daemon.orchestrator_id), "attempt": 1, "delay_s": 0.0}
    ]
    assert daemon.get_status() == "running"
    assert daemon.get_health_status()["restart_count"] == 1
    assert await _job_statuses(stack.database) == ["done"]
    resets = [d for d in stack.emitter.of("message:delta") if d["reset"]]
    assert resets == []  # the crash is ours, not the model's: clients see the retry's deltas


@pytest.mark.settings(daemon_max_restart_attempts=2)
async def test_gives_up_past_the_limit_until_an_admin_restarts(stack: Stack) -> None:
    org = await seed_org(stack.database)
    gave_up = _recorder(stack.manager, "daemon:gave-up")
    restarted = _recorder(stack.manager, "daemon:restarted")
    stack.generator.fail_always = _lost_connection("always broken")
    oid = org.orchestrator_ids["ada"]
    daemon = await stack.manager.start_daemon(oid)
    mention = await _mention(stack, org)
    await eventually(lambda: gave_up)
    assert len(restarted) == 2  # restart, restart, then give up on the third crash
    assert len(stack.generator.calls) == 3
    assert daemon.get_status() == "error"
    assert daemon.gave_up
    assert "gave up after 2 restarts" in (daemon.last_error or "")
    await asyncio.sleep(0.5)  # the health sweep must leave a given-up daemon alone
    assert len(stack.generator.calls) == 3
    assert await _job_statuses(stack.database) == ["pending"]  # not lost, waiting
    async with stack.database.transaction() as session:
        told = list(
            await session.scalars(
                select(Message.content).where(
                    Message.meta["mention_id"].as_string() == mention["id"]
                )
            )
        )
    assert told == [
        "⏳ Ada can't answer right now: gave up after 2 restarts within 600 s; restart it to "
        "try again; the admins have been told. It will answer once it runs again."
    ]
    await stack.manager.runtime.journal.flush()
    async with stack.database.transaction() as session:
        logged = list(
            await session.scalars(
                select(DaemonEvent.type).where(DaemonEvent.type == "daemon:gave-up")
            )
        )
    assert logged == ["daemon:gave-up"]
    status = await stack.manager.orchestrator_status(org.org.id, oid)
    assert status["status"] == "error" and status["gave_up"] is True

    stack.generator.fail_always = None
    await stack.manager.restart_daemon(oid)
    assert daemon.get_status() == "running"
    assert daemon.get_health_status()["restart_count"] == 0
    assert len(await eventually(lambda: _answers(stack.database, mention["id"]))) == 1


@pytest.mark.settings(
    daemon_max_restart_attempts=10,
    daemon_restart_backoff_initial=100,
    daemon_restart_backoff_max=400,
)
async def test_restarts_after_the_first_back_off(stack: Stack) -> None:
    org = await seed_org(stack.database)
    restarted = _recorder(stack.manager, "daemon:restarted")
    stack.generator.failures.extend(_lost_connection(f"crash {i}") for i in range(4))
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    mention = await _mention(stack, org)
    await eventually(lambda: _answers(stack.database, mention["id"]))
    delays = [r["delay_s"] for r in restarted]
    assert delays[0] == 0.0
    # Full jitter under a doubling ceiling: 100 ms, 200 ms, 400 ms (capped).
    for delay, ceiling in zip(delays[1:], (0.1, 0.2, 0.4), strict=True):
        assert 0.0 <= delay <= ceiling


async def test_a_permanent_model_failure_is_not_retried(stack: Stack) -> None:
    org = await seed_org(stack.database)
    restarted = _recorder(stack.manager, "daemon:restarted")
    errors = _recorder(stack.manager, "daemon:error")
    stack.generator.failures.append(ModelPermanentError("the model rejected the API key (401)"))
    oid = org.orchestrator_ids["ada"]
    daemon = await stack.manager.start_daemon(oid)
    mention = await _mention(stack, org)
    await eventually(lambda: daemon.get_status() == "error")
    await asyncio.sleep(0.5)
    assert restarted == []
    assert len(stack.generator.calls) == 1
    assert errors[-1]["permanent"] is True
    assert daemon.last_error == "the model rejected the API key (401)"
    notice = await _answers(stack.database, mention["id"])
    assert len(notice) == 1 and "rejected the API key" in notice[0].content
    await stack.manager.start_daemon(oid)  # an admin fixed the key and starts it again
    assert daemon.get_status() == "running"


@pytest.mark.settings(daemon_auto_restart=False)
async def test_auto_restart_off_leaves_a_crashed_daemon_in_error(stack: Stack) -> None:
    org = await seed_org(stack.database)
    stack.generator.failures.append(_lost_connection("boom"))
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    await _mention(stack, org)
    await eventually(lambda: daemon.get_status() == "error")
    await asyncio.sleep(0.5)
    assert daemon.get_status() == "error"
    assert await _job_statuses(stack.database) == ["pending"]


@pytest.mark.settings(daemon_reply_timeout=300, daemon_health_check_interval=100)
async def test_health_sweep_restarts_a_daemon_with_a_stuck_reply(stack: Stack) -> None:
    org = await seed_org(stack.database)
    health = _recorder(stack.manager, "daemon:health")
    gate = asyncio.Event()
    stack.generator.gate = gate
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    mention = await _mention(stack, org)
    await eventually(lambda: any(h["actions"].get("stuck-reply") for h in health))
    gate.set()
    answers = await eventually(lambda: _answers(stack.database, mention["id"]))
    assert len(answers) == 1
    assert any("stuck-reply" in e["error"] for e in daemon.errors)
    assert await _job_statuses(stack.database) == ["done"]


async def test_stop_drains_in_flight_replies_within_the_grace(stack: Stack) -> None:
    org = await seed_org(stack.database)
    gate = asyncio.Event()
    stack.generator.gate = gate
    oid = org.orchestrator_ids["ada"]
    daemon = await stack.manager.start_daemon(oid)
    mention = await _mention(stack, org)
    await eventually(lambda: daemon.active_conversations == 1)
    await stack.manager.runtime.journal.flush()
    async with stack.database.transaction() as session:
        row = await session.get(Orchestrator, oid)
        assert row is not None and row.status == "BUSY"
    assert stack.emitter.of("presence:update")[-1]["status"] == "BUSY"
    stopping = asyncio.create_task(stack.manager.stop_daemon(oid), name="test:stop")
    await eventually(lambda: daemon.get_status() == "stopping")
    gate.set()
    await stopping
    assert daemon.get_status() == "stopped"
    assert len(await _answers(stack.database, mention["id"])) == 1
    assert await _job_statuses(stack.database) == ["done"]


@pytest.mark.settings(daemon_stop_grace=0)
async def test_stop_past_the_grace_returns_the_job_and_a_restart_answers_it(stack: Stack) -> None:
    org = await seed_org(stack.database)
    stack.generator.gate = asyncio.Event()
    oid = org.orchestrator_ids["ada"]
    daemon = await stack.manager.start_daemon(oid)
    mention = await _mention(stack, org)
    await eventually(lambda: daemon.active_conversations == 1)
    await stack.manager.stop_daemon(oid)
    assert await _job_statuses(stack.database) == ["pending"]
    assert await _answers(stack.database, mention["id"]) == []
    stack.generator.gate = None
    await stack.manager.start_daemon(oid)
    assert len(await eventually(lambda: _answers(stack.database, mention["id"]))) == 1


@pytest.mark.settings(daemon_stop_grace=0)
async def test_a_process_restart_answers_what_was_in_flight_exactly_once(
    stack: Stack, stack_settings: Any
) -> None:
    org = await seed_org(stack.database)
    stack.generator.gate = asyncio.Event()
    oid = org.orchestrator_ids["ada"]
    await stack.manager.start_daemon(oid)
    mention = await _mention(stack, org)
    await eventually(lambda: stack.generator.in_flight == 1)
    await stack.manager.shutdown()  # the old process goes away mid-reply

    database = Database(stack_settings)
    second = await start_stack(database, stack_settings, ScriptedGenerator())
    try:
        await second.manager.start_daemon(oid)  # the orchestrator's session is still live
        answers = await eventually(lambda: _answers(database, mention["id"]))
        await asyncio.sleep(0.3)
        assert len(await _answers(database, mention["id"])) == 1
        assert answers[0].content == "ada re: @ada status?"
        assert len(second.generator.calls) == 1
    finally:
        await second.manager.shutdown()
        await database.dispose()


async def test_another_instance_holding_the_lease_keeps_the_daemon_out_without_an_error(
    stack: Stack, database_url: str
) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    await stack.manager.start_daemon(oid)
    owner = stack.manager.instance_id
    settings = make_settings(database_url, **FAST, instance_id="other-host")
    database = Database(settings)
    other = await start_stack(database, settings)
    try:
        with pytest.raises(LeaseHeld, match=f"running on {owner}"):
            await other.manager.start_daemon(oid)
        # Not an error, no daemon kept here; shown running on its owner, from the row.
        assert other.manager.get_daemon(oid) is None
        assert await other.manager.on_user_login(org.orchestrators["ada"]) is None
        seen = await other.manager.orchestrator_status(org.org.id, oid)
        assert (seen["status"], seen["instance_id"], seen["note"]) == (
            "running",
            owner,
            f"running on {owner}",
        )
        await other.manager.runtime.journal.flush()
        async with database.transaction() as session:
            row = await session.get(Orchestrator, oid)
            assert row is not None
            assert (row.status, row.lease_owner) == ("ONLINE", owner)
        assert stack.manager.is_daemon_running(oid)
    finally:
        await other.manager.shutdown()
        await database.dispose()


@pytest.mark.postgres_only
async def test_a_mention_posted_in_another_process_wakes_the_daemon_at_once(
    stack: Stack, database_url: str
) -> None:
    org = await seed_org(stack.database)
    # The serving instance sweeps only every minute: only NOTIFY can wake it promptly.
    slow = {**FAST, "daemon_heartbeat_interval": 60_000, "daemon_health_check_interval": 60_000}
    settings = make_settings(database_url, **slow, instance_id="serving-host")
    database = Database(settings)
    serving = await start_stack(database, settings)
    try:
        await serving.manager.start_daemon(org.orchestrator_ids["ada"])
        mention = await _mention(stack, org)  # posted through the other manager
        answers = await eventually(lambda: _answers(database, mention["id"]), within=10)
        assert len(answers) == 1
        assert len(serving.generator.calls) == 1
    finally:
        await serving.manager.shutdown()
        await database.dispose()
