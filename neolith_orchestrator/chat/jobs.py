"""Mention jobs: the durable queue between a mention and its reply. This module owns the
queue's rules; the daemon only asks it.

* **enqueue** — `service.post_message` writes one `pending` job per mentioned orchestrator in
  the transaction that stores the message.
* **claim** — a daemon takes due `pending` jobs (one per channel, oldest first, so replies
  follow message order), and takes back `claimed` ones whose `claim_expires_at` has passed
  (their holder never finished them). Each claim counts one attempt. A claimed job is
  *refused* — handed back to be closed with a failure notice, its channel never read — when
  the orchestrator is no longer a member of the channel, or when `max_attempts` attempts have
  already failed.
* **attempts** — count claims that did not end cleanly: a reply that raised, a claim that
  expired, an owner process that died. A release that is not the job's fault (stop, worker
  crash, a rate-limit deferral) gives the attempt back.
* **release** — back to `pending` (see above); `retry_later` keeps the attempt and waits.
* **finish** — `done` (answered) or `failed` (a visible failure notice was posted). Exactly
  one answer per job is enforced by the unique `messages.mention_job_id`.
* **notify** — a mention that waits because its orchestrator cannot answer now is told so
  once: `mark_notified` sets `notified_at` only from NULL.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.db.models import ChannelMember, JobStatus, MentionJob, Message
from neolith_orchestrator.db.types import utcnow

_SCAN = 200  # pending jobs looked at per claim; plenty for one daemon's queue head
NOT_A_MEMBER = "it is no longer a member of this channel"


@dataclass
class Claimed:
    jobs: list[MentionJob] = field(default_factory=list)
    # Claimed jobs that must not be answered, each with why: close them with a notice.
    refused: list[tuple[MentionJob, str]] = field(default_factory=list)
    # When the earliest job that is not yet due becomes due (None: nothing waiting).
    next_due: datetime | None = None
    # The scan saw every pending job and looked at each: claiming again at once would
    # find nothing new.
    complete: bool = False
    # Pending jobs were seen and left (their channel busy, no free slot) or not all were
    # seen: a finished reply should claim again.
    left_behind: bool = True


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Pending, or claimed by a holder whose claim has expired."""
    return or_(
        MentionJob.status == JobStatus.PENDING.value,
        and_(MentionJob.status == JobStatus.CLAIMED.value, MentionJob.claim_expires_at < now),
    )


async def claim(
    session: AsyncSession,
    orchestrator_id: uuid.UUID,
    owner: str,
    *,
    member_id: uuid.UUID,
    limit: int,
    busy_channels: Collection[uuid.UUID],
    claim_ttl: timedelta,
    max_attempts: int,
    now: datetime | None = None,
) -> Claimed:
    """Claim up to `limit` due jobs, at most one per channel and none in a busy channel,
    so replies within a channel follow message order. `member_id` is the orchestrator's
    user: a job in a channel it has left comes back in `refused`, as does one that has
    failed `max_attempts` times."""
    now = now or utcnow()
    result = Claimed()
    if limit <= 0:
        return result
    # The scan reads four columns, not whole jobs: a long queue costs little to look at.
    rows = (
        await session.execute(
            select(MentionJob.id, MentionJob.channel_id, MentionJob.available_at, MentionJob.status)
            .where(MentionJob.orchestrator_id == orchestrator_id, _claimable(now))
            .order_by(MentionJob.created_at, MentionJob.id)
            .limit(_SCAN)
        )
    ).all()
    seen: set[uuid.UUID] = set(busy_channels)
    picked: list[uuid.UUID] = []
    skipped = stopped_early = False
    for index, (job_id, channel_id, available_at, status) in enumerate(rows):
        if channel_id in seen:
            skipped = True
            continue
        seen.add(channel_id)
        # An expired claim is due now, whatever its available_at said when it was pending.
        if available_at > now and status == JobStatus.PENDING.value:
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
        .where(MentionJob.id.in_(picked), _claimable(now))
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
    if not by_id:
        return result
    # Membership is checked here, before anyone reads the channel for this job.
    members = set(
        await session.scalars(
            select(ChannelMember.channel_id).where(
                ChannelMember.user_id == member_id,
                ChannelMember.channel_id.in_({job.channel_id for job in by_id.values()}),
            )
        )
    )
    for job_id in picked:
        job = by_id.get(job_id)
        if job is None:
            continue
        if job.channel_id not in members:
            result.refused.append((job, NOT_A_MEMBER))
        elif job.attempts > max_attempts:  # this claim is one past the last allowed
            result.refused.append((job, gave_up_reason(job.attempts - 1)))
        else:
            result.jobs.append(job)
    return result


def gave_up_reason(failed: int) -> str:
    """What the channel is told about a job given up after `failed` failed attempts."""
    return f"{failed} attempts to answer it failed"


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
    """Give claimed jobs back to the queue for a reason that is not theirs (a stop, a
    worker crash, a rate limit): their attempt is given back too. Returns how many."""
    if not job_ids:
        return 0
    values: dict[str, object] = {
        "status": JobStatus.PENDING.value,
        "claimed_by": None,
        "claim_expires_at": None,
        "attempts": case((MentionJob.attempts > 0, MentionJob.attempts - 1), else_=0),
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


async def retry_later(
    session: AsyncSession, job_id: uuid.UUID, error: str, available_at: datetime
) -> None:
    """A failed attempt: back to `pending` from `available_at`, the attempt kept."""
    await session.execute(
        update(MentionJob)
        .where(MentionJob.id == job_id, MentionJob.status == JobStatus.CLAIMED.value)
        .values(
            status=JobStatus.PENDING.value,
            claimed_by=None,
            claim_expires_at=None,
            available_at=available_at,
            last_error=error,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


async def release_orchestrator(
    session: AsyncSession, orchestrator_ids: Collection[uuid.UUID]
) -> int:
    """Return every claimed job of these orchestrators to pending. Only the lease holder
    calls this, when it takes over: any claim left is from a daemon that is gone, maybe
    killed by that very job, so the attempt stays counted."""
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
    """Orchestrators with at least one job to claim now: pending and due, or an expired
    claim."""
    now = now or utcnow()
    rows = await session.scalars(
        select(MentionJob.orchestrator_id)
        .where(
            or_(
                and_(
                    MentionJob.status == JobStatus.PENDING.value,
                    MentionJob.available_at <= now,
                ),
                and_(
                    MentionJob.status == JobStatus.CLAIMED.value,
                    MentionJob.claim_expires_at < now,
                ),
            )
        )
        .distinct()
    )
    return set(rows)


async def mark_notified(session: AsyncSession, job_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Mark waiting jobs as told; returns those this call marked (each job is marked once,
    whoever asks, so its mention gets at most one notice)."""
    if not job_ids:
        return set()
    now = utcnow()
    marked = await session.scalars(
        update(MentionJob)
        .where(
            MentionJob.id.in_(list(job_ids)),
            MentionJob.notified_at.is_(None),
            MentionJob.status.in_([JobStatus.PENDING.value, JobStatus.CLAIMED.value]),
        )
        .values(notified_at=now, updated_at=now)
        .returning(MentionJob.id)
        .execution_options(synchronize_session=False)
    )
    return set(marked)


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
