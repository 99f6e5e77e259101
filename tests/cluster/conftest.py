"""The cluster tests: a Redis server for the session (emptied before each test), and
organizations seeded straight into the test's database before any instance starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neolith_orchestrator.db.engine import Database
from tests.support.redis import RedisServer, remove, start_redis
from tests.support.seed import Org, seed_org


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    try:
        yield server
    finally:
        remove(server)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied: nothing a previous test left counts here."""
    redis_server.flush()
    return redis_server.url()


@pytest.fixture
async def acme(database: Database) -> Org:
    """Organization "acme": admin, person "pat", orchestrator "ada", channel "general"."""
    return await seed_org(database, "acme", ("ada",))
