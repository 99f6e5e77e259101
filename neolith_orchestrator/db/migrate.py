"""Run the Alembic migrations in `migrations/` from inside the app (an async connection
shared with Alembic, as its cookbook shows for asyncio)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from neolith_orchestrator.db.engine import Database

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """Alembic's config, pointed at our migrations folder (no alembic.ini lookup by cwd)."""
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision` (the newest by default)."""
    await _run(database, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(database: Database, revision: str = "base") -> None:
    await _run(database, lambda cfg: command.downgrade(cfg, revision))


async def _run(database: Database, step: object) -> None:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        step(cfg)  # type: ignore[operator]

    async with database.engine.begin() as conn:
        await conn.run_sync(run)
