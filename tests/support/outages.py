"""A PostgreSQL server of the test's own, to stop and start without disturbing the shared
one, and the log checks the outage tests make."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
import pytest

from neolith_orchestrator.db import migrate
from neolith_orchestrator.db.engine import Database
from tests.conftest import make_settings
from tests.support.postgres import PostgresServer, start_postgres

_TEMPLATE = "outage_template"
_names = itertools.count()


@contextmanager
def own_postgres() -> Iterator[PostgresServer]:
    """A fresh server with a migrated template database, removed afterwards."""
    server = start_postgres()
    try:

        async def prepare() -> None:
            conn = await asyncpg.connect(server.admin_dsn)
            try:
                await conn.execute(f"CREATE DATABASE {_TEMPLATE}")
            finally:
                await conn.close()
            db = Database(make_settings(server.url(_TEMPLATE)))
            try:
                await migrate.upgrade(db)
            finally:
                await db.dispose()

        asyncio.run(prepare())
        yield server
    finally:
        server.stop()


async def fresh_database(server: PostgresServer) -> str:
    """The URL of a new migrated database on `server`."""
    name = f"outage_{next(_names)}"
    conn = await asyncpg.connect(server.admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {_TEMPLATE}')
    finally:
        await conn.close()
    return server.url(name)


@asynccontextmanager
async def outage(server: PostgresServer, seconds: float) -> AsyncIterator[None]:
    """Stop the server, run the block (while it is down), keep it down for at least
    `seconds` in all, then start it again on the same port and data. The subprocess calls
    run in a thread: the app under test shares this event loop."""
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(server.halt)
    started = loop.time()
    try:
        yield
        await asyncio.sleep(max(0.0, seconds - (loop.time() - started)))
    finally:
        await asyncio.to_thread(server.start)


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records that carry a traceback."""
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.exc_info is not None and r.exc_info[0] is not None
    ]


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    """The "database unreachable" WARNINGs and the "reachable again" INFOs."""
    records = [r for r in caplog.records if r.name == "neolith_orchestrator.db"]
    down = [
        r.getMessage()
        for r in records
        if r.levelno == logging.WARNING and r.getMessage().startswith("database unreachable")
    ]
    up = [
        r.getMessage()
        for r in records
        if r.levelno == logging.INFO and r.getMessage().startswith("database reachable again")
    ]
    return down, up
