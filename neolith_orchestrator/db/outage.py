"""Telling a database outage from a bug, and living through one.

`outage_reason` says whether an error means "the database cannot be reached" (a refused or
dropped connection, a server shutting down or starting up) rather than a mistake in a
statement. `Reachability` remembers whether the database is down: it logs one WARNING when
an outage starts and one INFO when it ends (never a traceback per retry), and lets anyone
wait for the end of it while one owned task probes with back-off and full jitter.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import exc as sa_exc

_log = logging.getLogger("neolith_orchestrator.db")
_REASON_LENGTH = 200
# The connection was refused or dropped, or the server is shutting down or starting up
# (class 08, 57P01-57P03). asyncpg's InternalClientError ("cannot switch to state …; another
# operation is in progress") is what a statement meets on a connection whose socket died.
_OUTAGES = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InternalClientError,
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return seen


def outage_reason(exc: BaseException, dialect: str) -> str | None:
    """A short reason when `exc` means the database is unreachable, else None."""
    for err in _chain(exc):
        if isinstance(err, _OUTAGES):
            return _describe(err)
        if isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated:
            return _describe(err.orig or err)
        # SQLite's are usually a statement's fault (no such table, a bad parameter), and an
        # embedded file has no outages; PostgreSQL's are about the connection or the server.
        if isinstance(err, sa_exc.InterfaceError | sa_exc.OperationalError) and dialect != "sqlite":
            return _describe(err.orig or err)
    return None


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    detail = text[0] if text else ""
    reason = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
    return reason[:_REASON_LENGTH]


class Reachability:
    """Whether the database answers, as the last transaction or probe found it."""

    def __init__(
        self,
        probe: Callable[[], Awaitable[bool]],
        *,
        initial: float = 0.25,
        cap: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self._probe = probe
        self._initial = initial
        self._cap = cap
        self._rng = rng or random.Random()
        self.down_since: float | None = None
        self.reason: str | None = None
        self._back: asyncio.Event | None = None
        self._prober: asyncio.Task[None] | None = None

    @property
    def is_down(self) -> bool:
        return self.down_since is not None

    def down(self, reason: str) -> None:
        """An operation failed for want of the database. Logged once per outage."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.reason = reason
            self._back = asyncio.Event()
            _log.warning("database unreachable: %s", reason)

    def up(self, started: float | None = None) -> None:
        """An operation succeeded: if an outage was under way, it is over — unless the
        operation began before the outage was seen (`started`, on the monotonic clock): a
        transaction that was already under way as the server went down says nothing of now,
        and ending the outage on it would log a second start a moment later."""
        if self.down_since is None:
            return
        if started is not None and started < self.down_since:
            return
        took = time.monotonic() - self.down_since
        self.down_since = None
        self.reason = None
        back, self._back = self._back, None
        if back is not None:
            back.set()
        _log.info("database reachable again after %.1f s", took)

    async def wait(self) -> None:
        """Return once the database answers again (at once when it is not known to be down).
        One owned task probes for everybody waiting."""
        back = self._back
        if back is None:
            return
        if self._prober is None or self._prober.done():
            self._prober = asyncio.create_task(self._probe_until_up(), name="db:probe")
        await back.wait()

    async def _probe_until_up(self) -> None:
        delay = self._initial
        while self.down_since is not None:
            # Full jitter: many processes coming back at once do not knock in step.
            await asyncio.sleep(self._rng.uniform(0, delay))
            if await self._probe():
                self.up()
                return
            delay = min(self._cap, delay * 2)

    async def aclose(self) -> None:
        prober, self._prober = self._prober, None
        if prober is not None:
            prober.cancel()
            await asyncio.gather(prober, return_exceptions=True)
