"""Database outages on a real PostgreSQL that the test stops and starts: the database layer
says 503 `unavailable` and logs the outage once, the LISTEN connection comes back, and every
daemon resumes by itself with every mention answered exactly once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select, text

from neolith_orchestrator.chat import service
from neolith_orchestrator.daemons.status import DaemonStatus
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import MentionJob, Message
from neolith_orchestrator.errors import Unavailable
from tests.conftest import make_settings
from tests.integration.conftest import FAST, Stack, start_stack
from tests.support.generators import ScriptedGenerator
from tests.support.outages import (
    fresh_database,
    outage,
    outage_lines,
    own_postgres,
    tracebacks,
)
from tests.support.postgres import PostgresServer
from tests.support.seed import seed_org
from tests.support.waiting import eventually, leftover_tasks

pytestmark = pytest.mark.postgres_only
OWNED = ("daemon:", "reply:", "sweep:", "recover:", "batcher:", "daemon-journal", "db:probe")


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with own_postgres() as server:
        yield server


@pytest.fixture
async def url(backend: str, pg: PostgresServer) -> str:
    return await fresh_database(pg)


@asynccontextmanager
async def _stack(
    url: str, generator: ScriptedGenerator | None = None, **overrides: object
) -> AsyncIterator[Stack]:
    settings = make_settings(url, **{**FAST, **overrides})
    database = Database(settings)
    stack = await start_stack(database, settings, generator)
    try:
        yield stack
    finally:
        await stack.manager.shutdown()
        await database.dispose()
    assert leftover_tasks(OWNED) == []


async def _answers(database: Database) -> dict[uuid.UUID, list[Message]]:
    """Every mention (a message that made jobs) and the replies to it."""
    async with database.transaction() as session:
        mentions = set(await session.scalars(select(MentionJob.message_id)))
        replies = await session.scalars(select(Message).where(Message.reply_to_id.in_(mentions)))
        found: dict[uuid.UUID, list[Message]] = {m: [] for m in mentions}
        for reply in replies:
            assert reply.reply_to_id is not None
            found[reply.reply_to_id].append(reply)
        return found


async def test_a_transaction_during_an_outage_is_unavailable_and_logged_once(
    url: str, pg: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    database = Database(make_settings(url))
    try:
        assert await database.ping()
        async with outage(pg, 0):
            for _ in range(5):
                with pytest.raises(Unavailable) as caught:
                    async with database.transaction() as session:
                        await session.execute(text("SELECT 1"))
                assert caught.value.status_code == 503
                assert caught.value.code == "unavailable"
                assert caught.value.retry_after >= 1
                assert caught.value.__cause__ is not None  # the driver's error, kept
            assert not await database.ping()
            assert database.is_down
        await database.wait_reachable()  # probes with back-off until the server answers
        assert not database.is_down
        async with database.transaction() as session:
            assert await session.scalar(text("SELECT 1")) == 1
        assert await database.ping()
    finally:
        await database.dispose()
    down, up = outage_lines(caplog)
    assert len(down) == 1 and len(up) == 1, (down, up)
    assert tracebacks(caplog) == []


async def test_a_statement_error_is_not_an_outage(url: str) -> None:
    database = Database(make_settings(url))
    try:
        with pytest.raises(Exception) as caught:
            async with database.transaction() as session:
                await session.execute(text("SELECT * FROM no_such_table"))
        assert not isinstance(caught.value, Unavailable)
        assert not database.is_down
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("health_ms", "outage_s"),
    [(5_000, 0.5), (200, 2.5)],
    ids=["shorter-than-health-interval", "longer-than-health-interval"],
)
async def test_daemons_resume_by_themselves_and_answer_every_mention_once(
    url: str,
    pg: PostgresServer,
    caplog: pytest.LogCaptureFixture,
    health_ms: int,
    outage_s: float,
) -> None:
    caplog.set_level(logging.INFO)
    generator = ScriptedGenerator(gate=asyncio.Event())
    async with _stack(
        url, generator, daemon_health_check_interval=health_ms, daemon_max_restart_attempts=1
    ) as stack:
        org = await seed_org(stack.database, handles=("ada", "bob"))
        daemons = [await stack.manager.start_daemon(oid) for oid in org.orchestrator_ids.values()]
        for n in range(4):
            for handle in ("ada", "bob"):
                await stack.manager.messenger.post(org.person, org.channel_id, f"@{handle} #{n}?")
        # One reply per daemon is in flight (held at the gate), the rest are pending.
        await eventually(lambda: generator.in_flight == 2)
        async with outage(pg, outage_s):
            generator.gate.set()  # the replies in flight now fail to store
            await eventually(lambda: all(d.waiting_for_database for d in daemons))
        answers = await eventually(lambda: _all_answered(stack.database), within=60, interval=0.2)
        assert all(len(replies) == 1 for replies in answers.values()), answers
        assert len(answers) == 8
        # The two replies in flight were written again after the outage: 8 + 2 model calls.
        assert len(generator.calls) == 10
        assert all(not r.meta.get("system") for rs in answers.values() for r in rs)
        for daemon in daemons:
            assert daemon.status is DaemonStatus.RUNNING
            assert not daemon.gave_up and daemon.policy.restart_count == 0
            assert not daemon.waiting_for_database
        assert stack.manager._listener is not None
        await eventually(lambda: stack.manager._listener.reconnects >= 1)  # type: ignore[union-attr]
    down, up = outage_lines(caplog)
    assert len(down) == 1 and len(up) == 1, (down, up)
    assert tracebacks(caplog) == []


async def _all_answered(database: Database) -> dict[uuid.UUID, list[Message]] | None:
    try:
        answers = await _answers(database)
    except Unavailable:
        return None
    return answers if answers and all(answers.values()) else None


async def test_the_mention_listener_reconnects_and_wakes_daemons_again(
    url: str, pg: PostgresServer
) -> None:
    # The heartbeat sweep is a minute away: only LISTEN/NOTIFY can wake the daemon.
    async with _stack(url, daemon_heartbeat_interval=60_000) as stack:
        org = await seed_org(stack.database)
        await stack.manager.start_daemon(org.orchestrator_ids["ada"])
        async with outage(pg, 0.2):
            pass
        listener = stack.manager._listener
        assert listener is not None
        await eventually(lambda: listener.reconnects == 1 and listener.connected)
        # Another process (its own engine) posts a mention: only NOTIFY reaches us.
        other = Database(stack.settings)
        try:
            async with other.transaction() as session:
                posted = await service.post_message(
                    session, stack.settings, org.person, org.channel_id, "@ada still there?"
                )
            mention_id = posted.message.id
        finally:
            await other.dispose()

        async def answered() -> bool:
            async with stack.database.transaction() as session:
                count = await session.scalar(
                    select(func.count()).where(Message.reply_to_id == mention_id)
                )
            return count == 1

        await eventually(answered, within=20)


async def test_a_hung_worker_is_found_by_its_stale_heartbeat_and_restarted(url: str) -> None:
    async with _stack(url, daemon_heartbeat_stale_after=600) as stack:
        org = await seed_org(stack.database)
        daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
        hang = asyncio.Event()

        async def stuck(_payload: object) -> None:
            # A listener that never returns hangs the worker that stamps the heartbeat.
            daemon.off("heartbeat", stuck)
            await hang.wait()

        daemon.on("heartbeat", stuck)
        await eventually(
            lambda: any("stale-heartbeat" in e["error"] for e in daemon.errors), within=20
        )
        await eventually(lambda: daemon.status is DaemonStatus.RUNNING and daemon.worker_alive)
        posted = await stack.manager.messenger.post(org.person, org.channel_id, "@ada back?")

        async def answered() -> bool:
            async with stack.database.transaction() as session:
                count = await session.scalar(
                    select(func.count()).where(Message.reply_to_id == uuid.UUID(posted["id"]))
                )
            return count == 1

        await eventually(answered, within=20)


async def test_shutting_down_during_an_outage_ends_every_task(
    url: str, pg: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    generator = ScriptedGenerator(gate=asyncio.Event())
    settings = make_settings(url, **FAST)
    database = Database(settings)
    stack = await start_stack(database, settings, generator)
    org = await seed_org(database)
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    await stack.manager.messenger.post(org.person, org.channel_id, "@ada one?")
    await eventually(lambda: generator.in_flight == 1)
    async with outage(pg, 0):
        generator.gate.set()
        await eventually(lambda: daemon.waiting_for_database)
        await stack.manager.shutdown()
        await database.dispose()
        assert leftover_tasks((*OWNED, "mention-listener")) == []
        assert daemon.status is DaemonStatus.STOPPED
    assert tracebacks(caplog) == []
    # The job was claimed when the process stopped: the next owner answers it once.
    async with _stack(url, generator) as again:
        await again.manager.start_daemon(org.orchestrator_ids["ada"])
        answers = await eventually(lambda: _all_answered(again.database), within=30)
        assert [len(r) for r in answers.values()] == [1]
