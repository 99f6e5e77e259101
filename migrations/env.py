"""Alembic environment: async engines on SQLite (aiosqlite) and PostgreSQL (asyncpg).

Called two ways: by the `alembic` command (we build an engine from DATABASE_URL), or by
the app with a live connection in `config.attributes["connection"]`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from neolith_orchestrator.config import load_settings
from neolith_orchestrator.db.engine import create_engine
from neolith_orchestrator.db.models import Base

config = context.config
target_metadata = Base.metadata


def _do_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = config.get_main_option("sqlalchemy.url") or None
    settings = load_settings(database_url=url) if url else load_settings()
    engine = create_engine(settings)
    async with engine.connect() as connection:
        await connection.run_sync(_do_run)
        await connection.commit()
    await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or load_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (connection := config.attributes.get("connection")) is not None:
    _do_run(connection)
else:
    asyncio.run(_run_async())
