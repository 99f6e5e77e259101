"""Database.run: a cancelled caller never leaves a transaction half-done."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import Organization


async def test_a_cancelled_caller_still_ends_the_transaction(database: Database) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def work(session: AsyncSession) -> str:
        session.add(Organization(slug="kept", name="Kept"))
        await session.flush()
        inside.set()
        await release.wait()
        return "done"

    caller = asyncio.create_task(database.run(work, name="test"), name="test:caller")
    await asyncio.wait_for(inside.wait(), 10)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    await asyncio.wait_for(database.settle(), 10)
    async with database.transaction() as session:  # the connection is free and usable
        count = await session.scalar(select(func.count()).select_from(Organization))
    assert count == 1


async def test_an_error_rolls_back_and_reaches_the_caller(database: Database) -> None:
    async def work(session: AsyncSession) -> None:
        session.add(Organization(slug="gone", name="Gone"))
        await session.flush()
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await database.run(work)
    async with database.transaction() as session:
        count = await session.scalar(select(func.count()).select_from(Organization))
    assert count == 0
