"""Mention jobs: the durable queue between a mention and its reply.

A job is `pending` until a daemon claims it (`claimed`, with an owner and a claim expiry),
then ends `done` (answered) or `failed` (a visible failure notice was posted). A claim that
is given up — stop, crash, restart — goes back to `pending`. Exactly one answer per job is
enforced by the unique `messages.mention_job_id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.db.models import JobStatus, MentionJob, Message
from neolith_orchestrator.db.types import utcnow

_SCAN = 200  # pending jobs looked at per claim; plenty for one daemon's queue head


@dataclass
class Claimed:
    jobs: list[MentionJob] = field(default_factory=list)
    # When the earliest job that is not yet due becomes due (None: nothing waiting).
    next_due: datetime | None = None
    # The scan saw every pending job and looked at each: claiming again at once would
    # find nothing new.
    complete: bool = False
    # Pending jobs were seen and left (their channel busy, no free slot) or not all were
    # seen: a finished reply should claim again.
    left_behind: bool = True


async def claim(
    session: AsyncSession,
    orchestrator_id: uuid.UUID,
    owner: str,
    *,
    limit: int,
    busy_channels: Collection[uuid.UUID],
    claim_ttl: timedelta,
    now: datetime | None = None,
) -> Claimed:
    """Claim up to `limit` due jobs, at most one per channel and none in a busy channel,
    so replies within a channel follow message order."""
    now = now or utcnow()
    result = Claimed()
    if limit <= 0:
        return result
    # The scan reads three columns, not whole jobs: a long queue costs little to look at.
    rows = (
        await session.execute(
            select(MentionJob.id, MentionJob.channel_id, MentionJob.available_at)
            .where(
                MentionJob.orchestrator_id == orchestrator_id,
                MentionJob.status == JobStatus.PENDING.value,
            )
            .order_by(MentionJob.created_at, MentionJob.id)
            .limit(_SCAN)
        )
    ).all()
    seen: set[uuid.UUID] = set(busy_channels)
    picked: list[uuid.UUID] = []
    skipped = stopped_early = False
    for index, (job_id, channel_id, available_at) in enumerate(rows):
        if channel_id in seen:
            skipped = True
            continue
        seen.add(channel_id)
        if available_at > now:
            if result.next_due is None or available_at < result.next_due:
                result.next_due = available_at
            continue
        picked.append(job_id)
        if len(picked) >= limit:
            stopped_early = index + 1 < len(rows)
            break
    result.complete = len(rows) < _SCAN and not stopped_early
    result.left_behind = skipped or not result.complete
    if not picked:
        return result
    # The claimed jobs come back whole from the UPDATE itself (no read per job).
    won = await session.scalars(
        update(MentionJob)
        .where(
            MentionJob.id.in_(picked),
            MentionJob.status == JobStatus.PENDING.value,
        )
        .values(
            status=JobStatus.CLAIMED.value,
            claimed_by=owner,
            claim_expires_at=now + claim_ttl,
            attempts=MentionJob.attempts + 1,
            updated_at=now,
        )
        .returning(MentionJob)
        .execution_options(synchronize_session=False)
    )
    by_id = {job.id: job for job in won}
    result.jobs = [by_id[job_id] for job_id in picked if job_id in by_id]
    return result


async def finish(
    session: AsyncSession,
    job_id: uuid.UUID,
    reply_message_id: uuid.UUID,
    *,
    failed_reason: str | None = None,
) -> None:
    """Close a job with the message that answers it (a reply, or a failure notice)."""
    now = utcnow()
    await session.execute(
        update(MentionJob)
        .where(MentionJob.id == job_id)
        .values(
            status=(JobStatus.FAILED if failed_reason else JobStatus.DONE).value,
            reply_message_id=reply_message_id,
            last_error=failed_reason,
            finished_at=now,
            updated_at=now,
            claim_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )


async def release(
    session: AsyncSession,
    job_ids: Collection[uuid.UUID],
    *,
    available_at: datetime | None = None,
    error: str | None = None,
) -> int:
    """Give claimed jobs back to the queue (stop, crash, rate limit). Returns how many."""
    if not job_ids:
        return 0
    values: dict[str, object] = {
        "status": JobStatus.PENDING.value,
        "claimed_by": None,
        "claim_expires_at": None,
        "updated_at": utcnow(),
    }
    if available_at is not None:
        values["available_at"] = available_at
    if error is not None:
        values["last_error"] = error
    done = await session.execute(
        update(MentionJob)
        .where(MentionJob.id.in_(list(job_ids)), MentionJob.status == JobStatus.CLAIMED.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


async def release_orchestrator(
    session: AsyncSession, orchestrator_ids: Collection[uuid.UUID]
) -> int:
    """Return every claimed job of these orchestrators to pending. Only the lease holder
    calls this, when it takes over: any claim left is from a daemon that is gone."""
    if not orchestrator_ids:
        return 0
    done = await session.execute(
        update(MentionJob)
        .where(
            MentionJob.orchestrator_id.in_(list(orchestrator_ids)),
            MentionJob.status == JobStatus.CLAIMED.value,
        )
        .values(status=JobStatus.PENDING.value, claimed_by=None, claim_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return int(done.rowcount or 0)  # type: ignore[attr-defined]


async def pending_counts(
    session: AsyncSession, orchestrator_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Unanswered (pending or claimed) jobs per orchestrator."""
    if not orchestrator_ids:
        return {}
    rows = await session.execute(
        select(MentionJob.orchestrator_id, func.count())
        .where(
            MentionJob.orchestrator_id.in_(list(orchestrator_ids)),
            MentionJob.status.in_([JobStatus.PENDING.value, JobStatus.CLAIMED.value]),
        )
        .group_by(MentionJob.orchestrator_id)
    )
    return {oid: int(n) for oid, n in rows.all()}


async def due_orchestrators(session: AsyncSession, now: datetime | None = None) -> set[uuid.UUID]:
    """Orchestrators with at least one pending job that is due now."""
    rows = await session.scalars(
        select(MentionJob.orchestrator_id)
        .where(
            MentionJob.status == JobStatus.PENDING.value,
            MentionJob.available_at <= (now or utcnow()),
        )
        .distinct()
    )
    return set(rows)


async def replies_in_channel_window(
    session: AsyncSession, channel_id: uuid.UUID, since: datetime
) -> tuple[int, datetime | None]:
    """How many orchestrator replies the channel has had since `since`, and when the oldest
    of them was written (counted in the database: no row comes back per reply)."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(Message.created_at)).where(
                Message.channel_id == channel_id,
                Message.mention_job_id.is_not(None),
                Message.created_at >= since,
            )
        )
    ).one()
    return int(count), oldest


async def replies_in_channel_since(
    session: AsyncSession, channel_id: uuid.UUID, since: datetime
) -> list[datetime]:
    """When each orchestrator reply in the channel since `since` was written, oldest first."""
    rows = await session.scalars(
        select(Message.created_at)
        .where(
            Message.channel_id == channel_id,
            Message.mention_job_id.is_not(None),
            Message.created_at >= since,
        )
        .order_by(Message.created_at)
    )
    return list(rows)
