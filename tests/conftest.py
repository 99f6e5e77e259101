"""Shared fixtures: every test that asks for `database` runs once per backend (the embedded
SQLite default and a real PostgreSQL server started for the session), each test on its own
freshly migrated database cloned from a migrated template."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from neolith_orchestrator.config import Settings
from neolith_orchestrator.db import migrate
from neolith_orchestrator.db.engine import Database
from tests.support.postgres import PostgresServer, start_postgres

BACKENDS = [b for b in os.environ.get("NEOLITH_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
_counter = itertools.count()


def make_settings(database_url: str, **overrides: object) -> Settings:
    """Settings for tests: never read `.env.orchestrator` or an API key from the environment."""
    base: dict[str, object] = {
        "database_url": database_url,
        "anthropic_api_key": None,
        "anthropic_base_url": None,
        "openai_api_key": None,
        "openai_base_url": None,
        "orchestrator_mode": "test",
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


async def _migrate(url: str) -> None:
    db = Database(make_settings(url))
    try:
        await migrate.upgrade(db)
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    async def create() -> None:
        conn = await asyncpg.connect(postgres_server.admin_dsn)
        try:
            await conn.execute("CREATE DATABASE neolith_template")
        finally:
            await conn.close()
        await _migrate(postgres_server.url("neolith_template"))

    asyncio.run(create())
    return "neolith_template"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run database tests once per backend; a backend-marked test runs on that one only
    (it is never collected, rather than skipped, on the other)."""
    if "backend" not in metafunc.fixturenames:
        return
    backends = list(BACKENDS)
    if metafunc.definition.get_closest_marker("postgres_only"):
        backends = [b for b in backends if b == "postgresql"]
    if metafunc.definition.get_closest_marker("sqlite_only"):
        backends = [b for b in backends if b == "sqlite"]
    metafunc.parametrize("backend", backends)


@pytest.fixture
def _template(backend: str, request: pytest.FixtureRequest) -> tuple[str, object]:
    # Sync on purpose: session fixtures that start servers run outside the test's loop.
    if backend == "sqlite":
        return backend, request.getfixturevalue("sqlite_template")
    request.getfixturevalue("postgres_template")
    return backend, request.getfixturevalue("postgres_server")


@pytest.fixture
async def database_url(_template: tuple[str, object], tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty, fully migrated database for this test alone."""
    backend, source = _template
    if backend == "sqlite":
        assert isinstance(source, Path)
        path = tmp_path / "test.db"
        shutil.copyfile(source, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    assert isinstance(source, PostgresServer)
    name = f"t_{os.getpid()}_{next(_counter)}"
    conn = await asyncpg.connect(source.admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE neolith_template')
    finally:
        await conn.close()
    yield source.url(name)
    conn = await asyncpg.connect(source.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    try:
        yield db
    finally:
        await db.dispose()
