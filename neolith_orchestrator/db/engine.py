"""The engine and the session factory. Services take a session and only flush; the edge
(an HTTP handler, a daemon step) owns the transaction through `Database.transaction()`.

A transaction that fails because the database cannot be reached raises
`errors.Unavailable` (503, `from` the driver's error), so every caller, HTTP or daemon,
tells an outage from a bug the same way; `Database.reachability` logs the outage once and
lets callers wait for its end."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from neolith_orchestrator.config import Settings
from neolith_orchestrator.db.outage import Reachability, outage_reason
from neolith_orchestrator.errors import Unavailable

T = TypeVar("T")
_log = logging.getLogger(__name__)

# SQLite: take the write lock at BEGIN, so two writers queue on busy_timeout instead of
# failing with "database is locked" when a read transaction tries to upgrade.
_SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the async engine for `settings.database_url` (SQLite or PostgreSQL)."""
    url = settings.database_url
    kwargs: dict[str, Any] = {"echo": settings.database_echo}
    if settings.is_sqlite:
        kwargs["connect_args"] = {"timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000}
        # One connection: SQLite takes one writer at a time anyway, and queueing for the
        # connection in asyncio is fair and prompt, where busy_timeout polls and sleeps.
        kwargs.update(pool_size=1, max_overflow=0, pool_timeout=60)
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine)
        return engine
    kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
    return create_async_engine(url, **kwargs)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        if ":memory:" not in str(engine.url):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Owns the engine and hands out sessions. One per app; closed by the app's lifespan."""

    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or create_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.reachability = Reachability(self.ping)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error.
        Raises `Unavailable` when the database cannot be reached."""
        started = time.monotonic()
        try:
            async with self.sessionmaker.begin() as session:
                yield session
        except Exception as exc:
            unavailable = self._unavailable(exc)
            if unavailable is None or unavailable is exc:
                raise
            raise unavailable from exc
        self.reachability.up(started)

    def _unavailable(self, exc: Exception) -> Unavailable | None:
        """`Unavailable` (noting the outage) when `exc` means the database is unreachable."""
        if isinstance(exc, Unavailable):
            return exc
        reason = outage_reason(exc, self.dialect)
        if reason is None:
            return None
        self.reachability.down(reason)
        return Unavailable(f"the database is unreachable ({reason}); try again shortly")

    @property
    def is_down(self) -> bool:
        """An outage is under way (the last attempt to reach the database failed)."""
        return self.reachability.is_down

    async def wait_reachable(self) -> None:
        """Return once the database answers (at once unless an outage is under way)."""
        await self.reachability.wait()

    async def run(self, work: Callable[[AsyncSession], Awaitable[T]], *, name: str = "work") -> T:
        """Run `work(session)` in its own transaction, in a task of its own that the caller's
        cancellation cannot interrupt: a cancelled caller stops waiting at once, while the
        transaction still commits or rolls back and hands its connection back. (Cancelling a
        task inside a statement abandons the connection; on SQLite an abandoned connection
        keeps the write lock until it is garbage-collected.) The task is owned here and
        awaited by `settle()` and `dispose()`."""
        task = asyncio.create_task(self._transact(work), name=f"db:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    async def _transact(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self.transaction() as session:
            return await work(session)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here so a caller that was cancelled meanwhile loses nothing silently.
            _log.debug("database work %s failed", task.get_name(), exc_info=task.exception())

    async def settle(self) -> None:
        """Wait for every transaction started by `run` to end."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def ping(self) -> bool:
        """True when the database answers a trivial query (and an outage, if any, is over)."""
        started = time.monotonic()
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            self._unavailable(exc)
            return False
        self.reachability.up(started)
        return True

    async def dispose(self) -> None:
        await self.reachability.aclose()
        await self.settle()
        await self.engine.dispose()
