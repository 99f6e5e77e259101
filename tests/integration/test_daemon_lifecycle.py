"""Lifecycle: start, stop, login/logout hooks, pause/resume, status on the orchestrator row,
listeners, and many daemons at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from neolith_orchestrator import DaemonStatus
from neolith_orchestrator.db.models import DaemonEvent, Orchestrator
from neolith_orchestrator.errors import DaemonError
from tests.integration.conftest import Stack
from tests.support.seed import bulk_orchestrators, seed_org
from tests.support.waiting import eventually


async def _row_status(stack: Stack, oid: Any) -> str:
    await stack.manager.runtime.journal.flush()
    async with stack.database.transaction() as session:
        return str(await session.scalar(select(Orchestrator.status).where(Orchestrator.id == oid)))


async def test_start_twice_returns_the_same_running_daemon(stack: Stack) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    first = await stack.manager.start_daemon(oid)
    second = await stack.manager.start_daemon(oid)
    assert first is second
    assert first.get_status() == "running"
    assert stack.manager.is_daemon_running(oid)
    assert [d.orchestrator_id for d in stack.manager.get_running_daemons()] == [oid]
    assert await _row_status(stack, oid) == "ONLINE"
    statuses = stack.emitter.of("daemon:status")
    assert statuses[-1]["status"] == "running"
    assert statuses[-1]["orchestrator_id"] == str(oid)


async def test_login_starts_only_orchestrators_and_logout_uses_the_user_id(stack: Stack) -> None:
    org = await seed_org(stack.database)
    assert await stack.manager.on_user_login(org.person) is None
    assert stack.manager.get_running_daemons() == []
    ada = org.orchestrators["ada"]
    daemon = await stack.manager.on_user_login(ada)
    assert daemon is not None and daemon.is_running()
    # The orchestrator id is not the user id: logging out by orchestrator id does nothing.
    assert await stack.manager.on_user_logout(daemon.orchestrator_id) is False
    assert daemon.is_running()
    assert await stack.manager.on_user_logout(ada.id) is True
    assert daemon.get_status() == "stopped"
    assert stack.manager.get_daemon(daemon.orchestrator_id) is None
    assert await _row_status(stack, daemon.orchestrator_id) == "OFFLINE"


@pytest.mark.settings(daemon_auto_start=False)
async def test_login_does_not_start_when_auto_start_is_off(stack: Stack) -> None:
    org = await seed_org(stack.database)
    assert await stack.manager.on_user_login(org.orchestrators["ada"]) is None
    assert stack.manager.get_running_daemons() == []


async def test_pause_and_resume_keep_the_daemon_logged_in(stack: Stack) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    daemon = await stack.manager.start_daemon(oid)
    await stack.manager.pause_daemon(oid)
    assert daemon.get_status() == "paused"
    assert daemon.is_running()
    with pytest.raises(DaemonError):
        await stack.manager.pause_daemon(oid)
    await stack.manager.resume_daemon(oid)
    assert daemon.get_status() == "running"
    with pytest.raises(DaemonError):
        await stack.manager.resume_daemon(oid)


async def test_listeners_sync_async_and_failing(stack: Stack) -> None:
    org = await seed_org(stack.database)
    seen: list[tuple[str, str]] = []

    def sync_handler(payload: dict[str, Any]) -> None:
        seen.append(("sync", payload["orchestrator_id"]))

    async def async_handler(payload: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        seen.append(("async", payload["orchestrator_id"]))

    def broken(payload: dict[str, Any]) -> None:
        raise RuntimeError("listener bug")

    stack.manager.on("daemon:started", broken)
    stack.manager.on("daemon:started", sync_handler)
    stack.manager.on("daemon:started", async_handler)
    daemon = await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    assert daemon.is_running()
    oid = str(daemon.orchestrator_id)
    assert seen == [("sync", oid), ("async", oid)]
    stack.manager.off("daemon:started", sync_handler)
    await stack.manager.restart_daemon(daemon.orchestrator_id)
    assert seen[-1] == ("async", oid)
    assert seen.count(("sync", oid)) == 1


async def test_lifecycle_events_are_logged(stack: Stack) -> None:
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    await stack.manager.start_daemon(oid)
    await stack.manager.stop_daemon(oid)
    await stack.manager.runtime.journal.flush()
    async with stack.database.transaction() as session:
        types = list(
            await session.scalars(
                select(DaemonEvent.type)
                .where(DaemonEvent.orchestrator_id == oid)
                .order_by(DaemonEvent.id)
            )
        )
    assert types == ["daemon:started", "daemon:stopped"]


async def test_each_idle_daemon_beats_itself_and_the_sweep_records_telemetry(
    stack: Stack,
) -> None:
    org = await seed_org(stack.database, handles=("ada", "bob"))
    beats: list[str] = []
    for oid in org.orchestrator_ids.values():
        daemon = await stack.manager.start_daemon(oid)
        daemon.on("heartbeat", lambda p: beats.append(p["orchestrator_id"]))
    # Idle daemons stamp their own heartbeat every interval (the sweep stamps nothing).
    expected = sorted(str(o) for o in org.orchestrator_ids.values())
    await eventually(lambda: sorted(set(beats)) == expected)
    report = await stack.manager.sweeps.heartbeat()
    assert report.daemons == 2
    assert report.actions["leases_renewed"] == 2
    assert report.errors == []
    status = stack.manager.runtime_status()
    assert status["sweeps"]["heartbeat"]["kind"] == "heartbeat"
    assert status["daemons"]["by_status"]["running"] == 2
    health = await stack.manager.sweeps.health()
    assert health.daemons == 2 and health.actions == {}
    assert stack.manager.runtime_status()["sweeps"]["health"]["id"] == health.id


async def test_a_thousand_daemons_start_and_stop_cleanly(stack: Stack) -> None:
    org = await seed_org(stack.database, handles=())
    ids = await bulk_orchestrators(stack.database, org.org, 1_000)
    daemons = await asyncio.gather(*(stack.manager.start_daemon(oid) for oid in ids))
    assert all(d.get_status() == "running" for d in daemons)
    assert stack.manager.runtime_status()["daemons"]["by_status"]["running"] == 1_000
    await eventually(lambda: stack.manager.sweeps.last("heartbeat"), within=10)
    await stack.manager.stop_all_daemons()
    assert stack.manager.get_running_daemons() == []
    assert all(d.status is DaemonStatus.STOPPED for d in daemons)
    await stack.manager.runtime.journal.flush()
    async with stack.database.transaction() as session:
        online = await session.scalars(
            select(Orchestrator.id).where(
                Orchestrator.status != "OFFLINE", Orchestrator.id.in_(ids)
            )
        )
        assert list(online) == []
    names = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("daemon:")]
    assert names == []
