"""A running DaemonManager on a real database, with a scripted model and a recording
emitter (the two outer boundaries), for the daemon and chat-flow tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from neolith_orchestrator.config import Settings
from neolith_orchestrator.daemons.manager import DaemonManager
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.realtime.emitter import RecordingEmitter
from tests.conftest import make_settings
from tests.support.generators import ScriptedGenerator
from tests.support.waiting import leftover_tasks

FAST: dict[str, Any] = {
    "daemon_heartbeat_interval": 100,
    "daemon_health_check_interval": 200,
    "daemon_restart_backoff_initial": 50,
    "daemon_restart_backoff_max": 200,
    "daemon_stop_grace": 2_000,
    "daemon_max_restart_attempts": 3,
    # Generous: a loaded CI machine must not look like a stalled daemon.
    "daemon_heartbeat_stale_after": 10_000,
}
OWNED_TASKS = ("daemon:", "reply:", "sweep:", "recover:", "batcher:", "daemon-journal")


@dataclass
class Stack:
    manager: DaemonManager
    emitter: RecordingEmitter
    generator: ScriptedGenerator
    database: Database
    settings: Settings


async def start_stack(
    database: Database, settings: Settings, generator: ScriptedGenerator | None = None
) -> Stack:
    emitter = RecordingEmitter()
    generator = generator or ScriptedGenerator()
    manager = DaemonManager(settings)
    await manager.startup(database, emitter, generator)
    return Stack(manager, emitter, generator, database, settings)


@pytest.fixture
def stack_settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    marker = request.node.get_closest_marker("settings")
    overrides = {**FAST, **(marker.kwargs if marker else {})}
    return make_settings(database_url, **overrides)


@pytest.fixture
async def stack(stack_settings: Settings) -> AsyncIterator[Stack]:
    database = Database(stack_settings)
    running = await start_stack(database, stack_settings)
    try:
        yield running
    finally:
        await running.manager.shutdown()
        await database.dispose()
    assert leftover_tasks(OWNED_TASKS) == []
