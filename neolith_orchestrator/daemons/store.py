"""What daemons write to the database: leases, status, heartbeats and the event log.

A lease (`orchestrators.lease_owner` / `lease_expires_at`) makes one instance the owner of
an orchestrator's daemon; the heartbeat sweep renews every lease of this instance in one
statement. The owner may return claims left by a crashed predecessor to the queue.

Failover: a lease that expired while its orchestrator is still logged in (a live auth
session) is an orphan: its instance died, or stopped and handed it over by expiring its
leases at once. Any live instance may take it; `acquire_leases` is one conditional UPDATE,
so exactly one wins. Only the lease owner writes an orchestrator's status.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.auth.sessions import live_users
from neolith_orchestrator.chat import jobs
from neolith_orchestrator.db.models import DaemonEvent, Orchestrator, OrchestratorStatus
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.ids import new_id


async def acquire_leases(
    session: AsyncSession,
    orchestrator_ids: Collection[uuid.UUID],
    owner: str,
    ttl: timedelta,
    now: datetime | None = None,
) -> set[uuid.UUID]:
    """Take the lease of each orchestrator that is free, expired or already ours; mark them
    ONLINE and return their claimed jobs to the queue. Returns the ids we now hold."""
    now = now or utcnow()
    held = await session.scalars(
        update(Orchestrator)
        .where(
            Orchestrator.id.in_(list(orchestrator_ids)),
            or_(
                Orchestrator.lease_owner.is_(None),
                Orchestrator.lease_owner == owner,
                Orchestrator.lease_expires_at < now,
            ),
        )
        .values(
            lease_owner=owner,
            lease_expires_at=now + ttl,
            last_heartbeat_at=now,
            status=OrchestratorStatus.ONLINE.value,
            status_reason=None,
            updated_at=now,
        )
        .returning(Orchestrator.id)
        .execution_options(synchronize_session=False)
    )
    acquired = set(held)
    await jobs.release_orchestrator(session, acquired)
    return acquired


async def release_leases(
    session: AsyncSession, orchestrator_ids: Collection[uuid.UUID], owner: str
) -> None:
    if not orchestrator_ids:
        return
    await session.execute(
        update(Orchestrator)
        .where(Orchestrator.id.in_(list(orchestrator_ids)), Orchestrator.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


async def expire_leases(session: AsyncSession, owner: str) -> int:
    """Hand every lease of `owner` over at shutdown: they expire now but keep their owner,
    so the other instances' orphan scan takes these daemons over at once (a released lease,
    as after a logout or an admin's stop, is not taken over)."""
    done = await session.execute(
        update(Orchestrator)
        .where(Orchestrator.lease_owner == owner)
        .values(lease_expires_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


async def orphans(session: AsyncSession, now: datetime | None = None) -> list[uuid.UUID]:
    """Orchestrators logged in whose lease has expired: their owner is gone. One query."""
    now = now or utcnow()
    rows = await session.scalars(
        select(Orchestrator.id)
        .where(
            Orchestrator.lease_owner.is_not(None),
            Orchestrator.lease_expires_at < now,
            Orchestrator.user_id.in_(live_users(now)),
        )
        .order_by(Orchestrator.id)
    )
    return list(rows)


async def renew_leases(session: AsyncSession, owner: str, ttl: timedelta) -> int:
    """The heartbeat write: one statement for every daemon this instance runs."""
    now = utcnow()
    done = await session.execute(
        update(Orchestrator)
        .where(Orchestrator.lease_owner == owner)
        .values(last_heartbeat_at=now, lease_expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


async def write_statuses(
    session: AsyncSession,
    statuses: dict[uuid.UUID, tuple[OrchestratorStatus, str | None]],
    owner: str,
) -> set[uuid.UUID]:
    """Write row statuses, one statement per distinct (status, reason), where `owner` holds
    the lease (or nobody does: a daemon stops after letting go of it). Another instance's
    row is left alone. Returns the ids written."""
    groups: dict[tuple[OrchestratorStatus, str | None], list[uuid.UUID]] = {}
    for oid, value in statuses.items():
        groups.setdefault(value, []).append(oid)
    now = utcnow()
    written: set[uuid.UUID] = set()
    for (status, reason), ids in groups.items():
        done = await session.scalars(
            update(Orchestrator)
            .where(
                Orchestrator.id.in_(ids),
                or_(Orchestrator.lease_owner == owner, Orchestrator.lease_owner.is_(None)),
            )
            .values(status=status.value, status_reason=reason, updated_at=now)
            .returning(Orchestrator.id)
            .execution_options(synchronize_session=False)
        )
        written.update(done)
    return written


async def write_events(session: AsyncSession, events: Sequence[dict[str, Any]]) -> None:
    """Append rows to the event log (organization_id, orchestrator_id, type, payload)."""
    if not events:
        return
    now = utcnow()
    rows = [{"id": new_id(), "created_at": now, **event} for event in events]
    await session.execute(insert(DaemonEvent), rows)
