"""Ties each orchestrator's daemon to its live sessions: the daemon starts when the
orchestrator logs in, and stops when its last session ends — by logout or by expiry (the
sweep). After a restart of the process, `restore()` brings back the daemons of
orchestrators whose sessions are still live."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from neolith_orchestrator.auth import sessions
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import User
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import Unavailable

_log = logging.getLogger(__name__)

_MAX_SLEEP = 60.0
_MIN_SLEEP = 0.05
_ERROR_BACKOFF = 5.0


class DaemonHooks(Protocol):
    """What the watcher tells the daemon manager."""

    async def on_user_login(self, user: User) -> object: ...

    async def on_user_logout(self, user_id: uuid.UUID) -> object: ...


class SessionWatcher:
    """Knows which orchestrators are logged in and keeps the manager told."""

    def __init__(
        self,
        database: Database,
        hooks: DaemonHooks,
        *,
        clock: Callable[[], datetime] = utcnow,
        max_sleep: float = _MAX_SLEEP,
        after_sweep: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.database = database
        self.hooks = hooks
        # Told after each sweep (the sockets: each is closed at its own expiry by its own
        # timer; this is the backstop).
        self._after_sweep = after_sweep
        self._clock = clock
        self._max_sleep = max_sleep
        self._online: set[uuid.UUID] = set()
        # One lock per orchestrator: a login racing the sweep or a logout is applied after
        # it, so the last decision always reflects the sessions in the database.
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._wake = asyncio.Event()
        self.sweeps = 0

    @property
    def online(self) -> frozenset[uuid.UUID]:
        """Orchestrator user ids the manager has been told are logged in."""
        return frozenset(self._online)

    def _lock(self, user_id: uuid.UUID) -> asyncio.Lock:
        return self._locks.setdefault(user_id, asyncio.Lock())

    async def restore(self) -> int:
        """At start-up: log in again every orchestrator that still holds a live session."""
        async with self.database.transaction() as session:
            users = await sessions.orchestrators_with_live_sessions(session, now=self._clock())
        for user in users:
            await self.logged_in(user)
        return len(users)

    async def logged_in(self, user: User) -> None:
        """After a login's commit."""
        if not user.is_orchestrator:
            return
        async with self._lock(user.id):
            self._online.add(user.id)
            try:
                await self.hooks.on_user_login(user)
            except Exception:
                _log.exception("starting the daemon of orchestrator user %s failed", user.id)
        self._wake.set()

    def adopt(self, user_id: uuid.UUID) -> None:
        """This instance took over the daemon of a logged-in orchestrator from another one:
        watch its sessions here, so its logout or expiry stops the daemon."""
        self._online.add(user_id)
        self._wake.set()

    def sessions_changed(self, user_ids: list[uuid.UUID]) -> None:
        """Another instance ended sessions of these users (`NOTIFY neolith_sessions`): if
        this instance watches one of them, sweep now rather than at the next expiry."""
        if self._online.intersection(user_ids):
            self._wake.set()

    async def look_again(self) -> None:
        """Sweep now (notifications sent while the listener was down are lost)."""
        self._wake.set()

    async def session_ended(self, user_id: uuid.UUID) -> None:
        """After a logout's commit: stop the daemon if that was the last live session."""
        if user_id in self._online:
            await self._settle({user_id})

    async def sweep(self) -> None:
        """One pass: stop the daemons whose last session has expired; purge old sessions."""
        self.sweeps += 1
        await self._settle(set(self._online))
        async with self.database.transaction() as session:
            await sessions.purge_dead_sessions(session, now=self._clock())
        if self._after_sweep is not None:
            await self._after_sweep()

    async def _settle(self, user_ids: set[uuid.UUID]) -> None:
        for user_id in sorted(user_ids):
            async with self._lock(user_id):
                if user_id not in self._online:
                    continue
                async with self.database.transaction() as session:
                    live = await sessions.live_user_ids(session, {user_id}, now=self._clock())
                if live:
                    continue
                self._online.discard(user_id)
                try:
                    await self.hooks.on_user_logout(user_id)
                except Exception:
                    _log.exception("stopping the daemon of orchestrator user %s failed", user_id)

    async def _seconds_to_next_expiry(self) -> float:
        now = self._clock()
        async with self.database.transaction() as session:
            first = await sessions.next_expiry(session, set(self._online), now=now)
        if first is None:
            return self._max_sleep
        return min(max((first - now).total_seconds(), _MIN_SLEEP), self._max_sleep)

    async def run(self) -> None:
        """The sweep loop: sleep until the next expiry (or a login), then sweep. Runs until
        cancelled; an error is logged and retried after a pause."""
        while True:
            try:
                self._wake.clear()
                delay = await self._seconds_to_next_expiry()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                await self.sweep()
            except Unavailable:
                # Logged once, where the outage is detected: no traceback per retry.
                await asyncio.sleep(_ERROR_BACKOFF)
            except Exception:
                _log.exception("session sweep failed")
                await asyncio.sleep(_ERROR_BACKOFF)
