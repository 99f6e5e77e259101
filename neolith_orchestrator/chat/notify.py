"""Cross-process wake-ups on PostgreSQL: the transaction that writes mention jobs also
sends `NOTIFY neolith_mentions` (delivered at commit), and every manager LISTENs, so a
daemon in another process starts at once instead of on its next heartbeat sweep. On
SQLite (one process) the in-process wake is all there is. The same listener serves other
channels of ids (`channel=`): a logout's `NOTIFY neolith_sessions` reaches the instance that
runs the orchestrator's daemon."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "neolith_mentions"
# A logout: the orchestrator user ids whose sessions changed.
SESSIONS_CHANNEL = "neolith_sessions"
_log = logging.getLogger(__name__)


async def notify(
    session: AsyncSession, orchestrator_ids: Iterable[uuid.UUID], channel: str = CHANNEL
) -> None:
    """Queue a notification in the session's transaction (PostgreSQL only)."""
    ids = ",".join(str(i) for i in orchestrator_ids)
    if ids and session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :ids)"), {"channel": channel, "ids": ids}
        )


class MentionListener:
    """One dedicated connection that LISTENs and hands the ids to `on_ids`. An owned task
    keeps it: when the connection drops (a database restart) it reconnects with back-off
    and full jitter, then calls `on_reconnect`, since notifications sent meanwhile are
    lost and someone must look for the work they announced."""

    def __init__(
        self,
        database_url: str,
        on_ids: Callable[[list[uuid.UUID]], None],
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        *,
        channel: str = CHANNEL,
        initial: float = 0.25,
        cap: float = 5.0,
    ) -> None:
        self._channel = channel
        self._dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._on_ids = on_ids
        self._on_reconnect = on_reconnect
        self._initial = initial
        self._cap = cap
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0

    async def start(self) -> None:
        """Connect (failing loudly if the database cannot be reached at start-up), then
        keep the connection in the background."""
        await self._connect()
        name = "mention-listener" if self._channel == CHANNEL else f"listener:{self._channel}"
        self._task = asyncio.create_task(self._keep(), name=name)

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(self._channel, self._received)
        self._conn = conn

    async def _keep(self) -> None:
        while True:
            while not self._lost.is_set():
                # The termination callback covers a closed socket; this covers the rest.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._cap):
                        await self._lost.wait()
                if not self.connected:
                    break
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None
            _log.warning("lost the %s connection; reconnecting", self._channel)
            delay = self._initial
            while True:
                await asyncio.sleep(random.uniform(0, delay))
                try:
                    await self._connect()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    delay = min(self._cap, delay * 2)
                    continue
                break
            self.reconnects += 1
            _log.info("%s connection restored", self._channel)
            if self._on_reconnect is not None:
                try:
                    await self._on_reconnect()
                except Exception as exc:  # the heartbeat sweep finds the work later anyway
                    _log.warning("looking for work after reconnecting failed: %s", exc)

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            ids = [uuid.UUID(part) for part in payload.split(",") if part]
        except ValueError:
            _log.warning("ignoring malformed %s payload %r", self._channel, payload)
            return
        self._on_ids(ids)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.remove_listener(self._channel, self._received)
                await conn.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()
