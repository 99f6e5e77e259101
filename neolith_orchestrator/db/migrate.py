"""Run the Alembic migrations from inside the app (an async connection shared with Alembic,
as its cookbook shows for asyncio).

The revisions live in the checkout's top-level `migrations/` folder, which the wheel ships
as the package `neolith_orchestrator.migrations`; they are found through the import system,
so an installed copy and an editable checkout migrate alike, from any working directory.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.errors import ConfigError

_PACKAGE = "neolith_orchestrator.migrations"
# Instances started together on one PostgreSQL database migrate one after the other: each
# takes this transaction-scoped advisory lock first (the later ones then find the schema at
# head and do nothing). SQLite's BEGIN IMMEDIATE serialises them already.
_MIGRATION_LOCK = 0x6E656F6C  # "neol"


def migrations_dir() -> Path:
    """Where the migration scripts are (inside the installed package, or the checkout)."""
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if Path(location, "env.py").is_file():
            return Path(location)
    raise ConfigError(f"the migrations are missing from this installation ({_PACKAGE})")


def alembic_config(url: str | None = None) -> Config:
    """Alembic's config, pointed at our migrations (no alembic.ini lookup by cwd)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision` (the newest by default)."""
    await _run(database, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(database: Database, revision: str = "base") -> None:
    await _run(database, lambda cfg: command.downgrade(cfg, revision))


async def _run(database: Database, step: Callable[[Config], None]) -> None:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        step(cfg)

    async with database.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.run_sync(run)
