"""The operator's log of a daemon's life: start, crash, restart, give-up, an admin's restart
and stop each leave one line with the handle, the organization and the reason, at a level
that says how bad it is; the same facts ride on the record for the JSON format."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.integration.conftest import Stack
from tests.support.seed import seed_org
from tests.support.waiting import eventually

LOGGER = "neolith_orchestrator.daemons.oplog"


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == LOGGER]


@pytest.mark.settings(daemon_max_restart_attempts=1)
async def test_a_daemons_life_as_the_log_tells_it(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    org = await seed_org(stack.database)
    oid = org.orchestrator_ids["ada"]
    # A reply error of its own fails only its job; a broken connection ends the worker.
    stack.generator.fail_always = ConnectionResetError("always broken")
    gave_up: list[object] = []
    stack.manager.on("daemon:gave-up", gave_up.append)
    await stack.manager.start_daemon(oid)
    await stack.manager.messenger.post(org.person, org.channel_id, "@ada status?")
    await eventually(lambda: gave_up)
    stack.generator.fail_always = None
    await stack.manager.restart_daemon(oid)
    await stack.manager.stop_daemon(oid)

    prefix = f"daemon @ada (organization {org.org.id})"
    lines = _lines(caplog)
    assert lines[0] == ("INFO", f"{prefix} started")
    assert ("ERROR", f"{prefix} crashed: ConnectionResetError: always broken") in lines
    assert ("WARNING", f"{prefix} restarted (attempt 1, after 0.0 s)") in lines
    gave_up_line = f"{prefix} gave up: after 1 restarts within 600 s; restart it to try again"
    assert ("ERROR", gave_up_line) in lines
    assert ("INFO", f"{prefix} restarted by an admin") in lines
    assert lines[-1][0] == "INFO" and lines[-1][1].startswith(f"{prefix} stopped")

    (record,) = [r for r in caplog.records if r.name == LOGGER and "crashed" in r.getMessage()][:1]
    assert record.handle == "ada"
    assert record.organization_id == str(org.org.id)
    assert record.orchestrator_id == str(oid)
    assert record.reason == "ConnectionResetError: always broken"
    assert record.event == "daemon:error"


@pytest.mark.settings(daemon_reply_timeout=300, daemon_health_check_interval=100)
async def test_an_unhealthy_daemon_is_logged_with_the_problem(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    org = await seed_org(stack.database)
    gate = asyncio.Event()
    stack.generator.gate = gate
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    await stack.manager.messenger.post(org.person, org.channel_id, "@ada status?")
    prefix = f"daemon @ada (organization {org.org.id})"
    unhealthy = ("WARNING", f"{prefix} is unhealthy and is restarted: stuck-reply")
    await eventually(lambda: unhealthy in _lines(caplog))
    gate.set()
