"""Telling a database outage from a statement error, and logging an outage once."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from neolith_orchestrator.daemons.signal import Signal
from neolith_orchestrator.db.outage import Reachability, outage_reason


def _wrapped(
    error: Exception, kind: type[sa_exc.DBAPIError], invalidated: bool = False
) -> Exception:
    return kind("SELECT 1", {}, error, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        _wrapped(RuntimeError("closed"), sa_exc.DBAPIError, invalidated=True),
        _wrapped(RuntimeError("server closed"), sa_exc.OperationalError),
        _wrapped(RuntimeError("connection is closed"), sa_exc.InterfaceError),
        _wrapped(asyncpg.InternalClientError("cannot switch to state 15"), sa_exc.InternalError),
    ],
)
def test_connection_errors_are_outages(error: Exception) -> None:
    reason = outage_reason(error, "postgresql")
    assert (reason is not None and type(error).__name__ in reason) or reason


def test_an_outage_is_found_through_the_cause_chain() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as inner:
            raise RuntimeError("while connecting") from inner
    except RuntimeError as outer:
        assert outage_reason(outer, "postgresql") == "ConnectionRefusedError: [Errno 111] refused"


@pytest.mark.parametrize(
    ("error", "dialect"),
    [
        (_wrapped(RuntimeError("duplicate key"), sa_exc.IntegrityError), "postgresql"),
        (_wrapped(RuntimeError("syntax error"), sa_exc.ProgrammingError), "postgresql"),
        (_wrapped(RuntimeError("no such table: x"), sa_exc.OperationalError), "sqlite"),
        (_wrapped(RuntimeError("Error binding parameter"), sa_exc.InterfaceError), "sqlite"),
        (ValueError("bad input"), "postgresql"),
    ],
)
def test_statement_errors_are_not_outages(error: Exception, dialect: str) -> None:
    assert outage_reason(error, dialect) is None


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    answers = [False, False, True]
    probes: list[bool] = []

    async def probe() -> bool:
        probes.append(answers[len(probes)])
        return probes[-1]

    reach = Reachability(probe, initial=0.001, cap=0.004)
    await reach.wait()  # not down: returns at once, no probe
    assert probes == []
    for n in range(5):
        reach.down(f"refused #{n}")
    assert reach.is_down and reach.reason == "refused #0"
    await asyncio.gather(reach.wait(), reach.wait())  # one prober for every waiter
    assert probes == [False, False, True] and not reach.is_down
    reach.up()  # already up: nothing more is logged
    await reach.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name == "neolith_orchestrator.db"]
    assert messages[0] == "database unreachable: refused #0"
    assert messages[1].startswith("database reachable again after ")
    assert len(messages) == 2


async def test_a_signal_wakes_its_waiter_or_times_out() -> None:
    signal = Signal()
    assert await signal.wait(0.001) is False
    waiter = asyncio.create_task(signal.wait())
    await asyncio.sleep(0)
    signal.set()
    assert await waiter is True
    assert await signal.wait(0.001) is True  # stays set until cleared
    signal.clear()
    assert not signal.is_set()


async def test_a_success_that_began_before_the_outage_does_not_end_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A transaction already under way as the server went down may still commit: that says
    nothing about now, so the outage goes on and is logged once."""
    caplog.set_level(logging.INFO)

    async def probe() -> bool:
        return False

    reachability = Reachability(probe)
    before = time.monotonic()
    reachability.down("ConnectionResetError")
    reachability.up(before)
    assert reachability.is_down
    reachability.down("ConnectionResetError")
    reachability.up(time.monotonic())
    assert not reachability.is_down
    messages = [r.getMessage() for r in caplog.records if "database" in r.getMessage()]
    assert messages[0].startswith("database unreachable") and len(messages) == 2
