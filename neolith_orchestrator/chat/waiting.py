"""No silence: a mention of an orchestrator that cannot answer now is told so in the channel,
once, in the transaction that stores the mention.

Why at post time, from the orchestrator's row: the row is what every instance of a cluster
shares (the posting process may not run the daemon), it says whether any instance holds the
lease (runs the daemon), and its status and reason say why a daemon that holds it cannot
answer (ERROR with its reason, paused). The notice is stored with the mention and pushed
right after it. It is not the job's answer: the job stays pending and is answered when the
daemon can again. `jobs.mark_notified` makes it once per mention, whoever else tries.

Mentions already waiting when a daemon stops being able to answer are told by
`tell_pending`, from the place that sees it happen: a reply that met a permanent model
failure, a pause.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.chat import jobs
from neolith_orchestrator.db.models import (
    JobStatus,
    MentionJob,
    Message,
    Orchestrator,
    OrchestratorStatus,
)

# The row's status_reason while its daemon is paused (the row's status stays ONLINE: the
# orchestrator is logged in, it just takes no new mention).
PAUSED = "paused"
PAUSED_NOTICE = ("paused", "is paused; it will answer when resumed")


def failing(why: str) -> tuple[str, str]:
    """(kind, text) for an orchestrator whose daemon is in ERROR for `why`."""
    return (
        "error",
        f"can't answer right now: {why}; the admins have been told. "
        "It will answer once it runs again",
    )


def absence(row: Orchestrator) -> tuple[str, str] | None:
    """Why the orchestrator of `row` cannot answer now — (kind, what the channel is told
    after its name) — or None when it can."""
    # No lease: no instance runs its daemon (a stop or logout lets go of it). A lease past
    # its expiry still counts as running: its owner is late, or another instance is about
    # to take the daemon over and answer.
    if row.lease_owner is None or row.status == OrchestratorStatus.OFFLINE.value:
        return "offline", "is offline; it will answer at its next login"
    if row.status == OrchestratorStatus.ERROR.value:
        return failing(row.status_reason or "its daemon failed")
    if row.status_reason == PAUSED:
        return PAUSED_NOTICE
    return None


async def tell(
    session: AsyncSession,
    new_jobs: list[MentionJob],
    orchestrators: dict[uuid.UUID, tuple[Orchestrator, str]],
) -> list[Message]:
    """For each job whose orchestrator (row, display name) cannot answer now, store a notice
    in its channel. Returns the notices stored (to push after the commit)."""
    absent: dict[uuid.UUID, tuple[MentionJob, str, str, uuid.UUID]] = {}
    for job in new_jobs:
        row, name = orchestrators[job.orchestrator_id]
        found = absence(row)
        if found is not None:
            kind, text = found
            absent[job.id] = (job, kind, _sentence(name, text), row.user_id)
    return await _notices(session, absent)


async def tell_pending(
    session: AsyncSession,
    orchestrator_id: uuid.UUID,
    user_id: uuid.UUID,
    name: str,
    kind: str,
    text: str,
    *,
    claimed_too: bool = True,
) -> list[Message]:
    """The orchestrator has just become unable to answer (`kind`, `text` as in `absence`):
    tell each of its waiting mentions not told yet (with `claimed_too` False, only those
    not being answered right now)."""
    statuses = [JobStatus.PENDING.value]
    if claimed_too:
        statuses.append(JobStatus.CLAIMED.value)
    waiting = await session.scalars(
        select(MentionJob).where(
            MentionJob.orchestrator_id == orchestrator_id,
            MentionJob.status.in_(statuses),
            MentionJob.notified_at.is_(None),
        )
    )
    sentence = _sentence(name, text)
    return await _notices(session, {j.id: (j, kind, sentence, user_id) for j in waiting})


def _sentence(name: str, text: str) -> str:
    return f"⏳ {name} {text}."


async def _notices(
    session: AsyncSession, absent: dict[uuid.UUID, tuple[MentionJob, str, str, uuid.UUID]]
) -> list[Message]:
    if not absent:
        return []
    marked = await jobs.mark_notified(session, list(absent))
    notices = []
    for job_id, (job, kind, content, author_id) in absent.items():
        if job_id not in marked:
            continue  # told already, by someone else
        notice = Message(
            organization_id=job.organization_id,
            channel_id=job.channel_id,
            author_id=author_id,
            content=content,
            meta={
                "system": True,
                "kind": f"orchestrator_{kind}",
                "orchestrator_id": str(job.orchestrator_id),
                "job_id": str(job.id),
                "mention_id": str(job.message_id),
            },
        )
        session.add(notice)
        notices.append(notice)
    await session.flush()
    return notices
