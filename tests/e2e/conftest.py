"""A real server on a loopback port (uvicorn, the whole app, a migrated database of each
backend) and real clients. Replies come from the offline responder unless a test points
the app at the loopback model server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from neolith_orchestrator.app import App, create_app
from neolith_orchestrator.config import Settings
from neolith_orchestrator.context import AppContext
from neolith_orchestrator.db.engine import Database
from tests.conftest import make_settings
from tests.support.seed import Org, seed_org
from tests.support.server import serve
from tests.support.waiting import leftover_tasks

FAST: dict[str, Any] = {
    "daemon_heartbeat_interval": 200,
    "daemon_health_check_interval": 400,
    "daemon_stop_grace": 5_000,
}
# Every task the app, the manager and its daemons own, by name prefix.
OWNED_TASKS = (
    "neolith:",
    "daemon:",
    "reply:",
    "sweep:",
    "recover:",
    "batcher:",
    "daemon-journal",
    "uvicorn:",
)


@dataclass
class Live:
    """A running app, its base URL and an HTTP client pointed at it."""

    app: App
    url: str
    http: httpx.AsyncClient

    @property
    def ctx(self) -> AppContext:
        assert self.app.context is not None
        return self.app.context


def e2e_settings(database_url: str, **overrides: Any) -> Settings:
    return make_settings(database_url, **{**FAST, **overrides})


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Live]:
    """Serve a fresh app for `settings`; on exit, check that nothing it owned lives on."""
    app = create_app(settings)
    async with serve(app) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield Live(app, server.url, http)
    assert app.context is None
    assert leftover_tasks(OWNED_TASKS) == []


@pytest.fixture
def app_settings(database_url: str) -> Settings:
    return e2e_settings(database_url)


@pytest.fixture
async def live(app_settings: Settings) -> AsyncIterator[Live]:
    async with running(app_settings) as server:
        yield server


@pytest.fixture
async def acme(database: Database) -> Org:
    """Organization "acme": admin, person "pat", orchestrator "ada", channel "general"."""
    return await seed_org(database, "acme", ("ada",))


@pytest.fixture
async def globex(database: Database) -> Org:
    """A second organization, "globex", shaped like acme (orchestrator "max")."""
    return await seed_org(database, "globex", ("max",))
