"""The migrations build exactly the schema the models describe, and run both ways."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from neolith_orchestrator.db import migrate
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import Base

TABLES = {
    "organizations",
    "users",
    "orchestrators",
    "channels",
    "channel_members",
    "messages",
    "auth_sessions",
    "mention_jobs",
    "daemon_events",
    "token_usage",
}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def test_migrated_schema_matches_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_tables) == TABLES
        assert await conn.run_sync(_diff) == []


async def test_downgrade_to_base_and_upgrade_again(database: Database) -> None:
    await migrate.downgrade(database, "base")
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()
    await migrate.upgrade(database)
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_tables) == TABLES
        assert await conn.run_sync(_diff) == []


async def test_instances_starting_together_migrate_one_after_the_other(
    database: Database,
) -> None:
    """Several instances starting at once on an empty database: every one of them comes up
    (no duplicate-table error), and the schema is built once."""
    await migrate.downgrade(database, "base")
    others = [Database(database.settings) for _ in range(3)]
    try:
        await asyncio.gather(migrate.upgrade(database), *(migrate.upgrade(d) for d in others))
    finally:
        for other in others:
            await other.dispose()
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_tables) == TABLES
        assert await conn.run_sync(_diff) == []
