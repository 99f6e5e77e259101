"""Cross-process wake-ups on PostgreSQL: the transaction that writes mention jobs also
sends `NOTIFY neolith_mentions` (delivered at commit), and every manager LISTENs, so a
daemon in another process starts at once instead of on its next heartbeat sweep. On
SQLite (one process) the in-process wake is all there is."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "neolith_mentions"
_log = logging.getLogger(__name__)


async def notify(session: AsyncSession, orchestrator_ids: Iterable[uuid.UUID]) -> None:
    """Queue a notification in the session's transaction (PostgreSQL only)."""
    ids = ",".join(str(i) for i in orchestrator_ids)
    if ids and session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :ids)"), {"channel": CHANNEL, "ids": ids}
        )


class MentionListener:
    """One dedicated connection that LISTENs and hands the ids to `on_ids`."""

    def __init__(self, database_url: str, on_ids: Callable[[list[uuid.UUID]], None]) -> None:
        self._dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._on_ids = on_ids
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self._dsn)
        await self._conn.add_listener(CHANNEL, self._received)

    def _received(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            ids = [uuid.UUID(part) for part in payload.split(",") if part]
        except ValueError:
            _log.warning("ignoring malformed %s payload %r", CHANNEL, payload)
            return
        self._on_ids(ids)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.remove_listener(CHANNEL, self._received)
            await conn.close()
