"""One mention → one reply: read the context, ask the generator (streaming deltas to the
channel), then store the reply and close the job in one transaction. A reply that cannot be
written ends as a visible notice in the channel, never as silence."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import (
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.ai.generator import (
    ContextMessage,
    ReplyGenerator,
    ReplyRequest,
    ReplyResult,
)
from neolith_orchestrator.chat import jobs, service, usage, waiting
from neolith_orchestrator.chat.messenger import Messenger
from neolith_orchestrator.chat.schemas import message_out
from neolith_orchestrator.config import Settings
from neolith_orchestrator.daemons.backoff import backoff_delay
from neolith_orchestrator.daemons.stream import ChannelStream
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import Channel, MentionJob, Message, User
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import (
    ModelError,
    ModelPermanentError,
    NotFound,
    PermissionDenied,
    Unavailable,
    ValidationFailed,
)
from neolith_orchestrator.metrics import Metrics
from neolith_orchestrator.realtime.emitter import Emitter

RATE_WINDOW = timedelta(minutes=1)
# Errors of the surroundings (the database or the network went away), not of the job: they
# end the worker, and the supervisor restarts it once the database is back; the job's
# attempt is given back. (`Database` reports an outage as `Unavailable`.)
_ENVIRONMENT = (
    Unavailable,
    OSError,
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
)
# Storing the reply was refused for a reason that will not change (the orchestrator left
# the channel, the channel or the mention is gone): the job fails at once.
_FINAL = (PermissionDenied, NotFound, ValidationFailed)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a daemon speaks as."""

    orchestrator_id: uuid.UUID
    user_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    handle: str
    charter: dict[str, Any]


@dataclass
class ReplyServices:
    database: Database
    settings: Settings
    generator: ReplyGenerator
    emitter: Emitter
    messenger: Messenger
    metrics: Metrics
    # Told of every reply that ended as a failure notice (the manager informs the admins).
    on_failure: Callable[[Identity, MentionJob, str], Awaitable[None]] | None = None


class Outcome(StrEnum):
    REPLIED = "replied"
    FAILED = "failed"
    DEFERRED = "deferred"
    DUPLICATE = "duplicate"
    RETRY = "retry"  # the attempt failed; the job waits for its next one


def _context(message: Message, names: dict[uuid.UUID, str], self_id: uuid.UUID) -> ContextMessage:
    author = message.author_id
    return ContextMessage(
        id=message.id,
        author_id=author,
        author_name=names.get(author, "someone") if author else "system",
        content=message.content,
        created_at=message.created_at,
        from_self=author == self_id,
    )


async def _load_request(
    session: AsyncSession, settings: Settings, identity: Identity, job: MentionJob
) -> tuple[ReplyRequest, int] | str:
    """The request for the generator, and the mention's chain depth (the reply's is one
    more); or why there is none."""
    mention = await session.get(Message, job.message_id)
    channel = await session.get(Channel, job.channel_id)
    if mention is None or channel is None:
        return "the mentioned message no longer exists"
    stmt = select(Message).where(
        Message.organization_id == identity.organization_id,
        Message.channel_id == job.channel_id,
        Message.id < mention.id,
    )
    if mention.reply_to_id is not None:  # a thread: its root and the replies to it
        root = mention.reply_to_id
        stmt = stmt.where(or_(Message.id == root, Message.reply_to_id == root))
    found = await session.scalars(
        stmt.order_by(Message.id.desc()).limit(settings.ai_context_messages)
    )
    history = [m for m in reversed(list(found)) if not (m.meta or {}).get("system")]
    author_ids = {m.author_id for m in [*history, mention] if m.author_id}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(author_ids)))
    names = {user_id: name for user_id, name in rows.all()}
    request = ReplyRequest(
        organization_id=identity.organization_id,
        orchestrator_id=identity.orchestrator_id,
        orchestrator_name=identity.name,
        orchestrator_handle=identity.handle,
        charter=identity.charter,
        channel_name=channel.name,
        mention=_context(mention, names, identity.user_id),
        history=tuple(_context(m, names, identity.user_id) for m in history),
    )
    return request, mention.chain_depth


async def answer(services: ReplyServices, identity: Identity, job: MentionJob) -> Outcome:
    """Answer one claimed job. Raises `ModelPermanentError` (after posting the notice) when
    the model refuses us for good, so the daemon can stop trying."""
    settings = services.settings

    async def prepare(
        session: AsyncSession,
    ) -> tuple[datetime | None, bool, tuple[ReplyRequest, int] | str | None]:
        # Checked again here (the claim checked too): it may have left since, and then
        # nothing of the channel is read.
        if not await service.is_member(session, job.channel_id, identity.user_id):
            return None, False, jobs.NOT_A_MEMBER
        recent, oldest = await jobs.replies_in_channel_window(
            session, job.channel_id, utcnow() - RATE_WINDOW
        )
        if recent >= settings.mention_replies_per_channel_per_minute and oldest is not None:
            until = oldest + RATE_WINDOW
            await jobs.release(
                session, [job.id], available_at=until, error="channel reply limit reached"
            )
            return until, await _told_recently(session, job.channel_id), None
        return None, False, await _load_request(session, settings, identity, job)

    deferred_until, told, loaded = await services.database.run(prepare, name="reply:prepare")
    if deferred_until is not None:
        services.metrics.mentions_deferred.inc()
        if not told:
            await _tell_deferred(services, identity, job.channel_id, deferred_until)
        return Outcome.DEFERRED
    if loaded is None:  # only with deferred_until, handled above
        return Outcome.DEFERRED
    if isinstance(loaded, str):
        return await _fail(services, identity, job, loaded)
    request, mention_depth = loaded
    refused = await usage.refusal(services, identity)  # past the monthly token budget
    if refused is not None:
        return await _fail(services, identity, job, refused)
    sink = ChannelStream(
        services.emitter,
        channel_id=job.channel_id,
        job_id=job.id,
        reply_to_id=job.message_id,
        author_id=identity.user_id,
        orchestrator_id=identity.orchestrator_id,
        interval=settings.message_delta_interval / 1000,
    )
    try:
        result = await services.generator.generate(request, sink)
        await sink.flush()
    except ModelPermanentError as exc:
        await _fail(services, identity, job, exc.message)
        # The daemon stops for good: its other waiting mentions are told now, not left
        # in silence (each still answered once it runs again).
        await tell_waiting(services, identity, *waiting.failing(exc.message))
        raise
    except ModelError as exc:
        return await _fail(services, identity, job, exc.message)
    return await _store_reply(services, identity, job, request, result, mention_depth)


async def refuse(
    services: ReplyServices, identity: Identity, job: MentionJob, reason: str
) -> Outcome:
    """Close a job the queue refused (see `jobs.claim`) with a failure notice saying
    `reason`; nothing of the channel is read. The job keeps its last error for the admins."""
    recorded = f"{reason} (last: {job.last_error})" if job.last_error else reason
    return await _fail(services, identity, job, recorded, _told_admins(reason))


def _told_admins(reason: str) -> str:
    return f"{reason}; the admins have been told"


def is_environmental(exc: BaseException) -> bool:
    """Whether a reply failed because of its surroundings rather than its job."""
    return isinstance(exc, _ENVIRONMENT)


async def failed_attempt(
    services: ReplyServices, identity: Identity, job: MentionJob, exc: Exception
) -> Outcome:
    """An attempt at `job` raised: try again later (with back-off), or, once
    `DAEMON_JOB_MAX_ATTEMPTS` attempts have failed, close it with a failure notice. Either
    way the daemon goes on with its other channels."""
    settings = services.settings
    error = f"{type(exc).__name__}: {exc}"
    if job.attempts >= settings.daemon_job_max_attempts:
        shown = jobs.gave_up_reason(job.attempts)
        recorded = f"{shown} (last: {error})"
        return await _fail(services, identity, job, recorded, _told_admins(shown))
    delay = backoff_delay(
        job.attempts,
        settings.daemon_restart_backoff_initial / 1000,
        settings.daemon_restart_backoff_max / 1000,
    )
    until = utcnow() + timedelta(seconds=delay)
    await services.database.run(
        lambda session: jobs.retry_later(session, job.id, error, until), name="reply:retry"
    )
    return Outcome.RETRY


async def _store_reply(
    services: ReplyServices,
    identity: Identity,
    job: MentionJob,
    request: ReplyRequest,
    result: ReplyResult,
    mention_depth: int,
) -> Outcome:
    meta = {
        "orchestrator_id": str(identity.orchestrator_id),
        "job_id": str(job.id),
        "model": result.model,
        "stop_reason": result.stop_reason,
        "usage": dict(result.usage),
        "offline": result.offline,
    }
    text = result.text.strip() or "(no answer)"
    text = text[: services.settings.message_max_length]

    async def store(
        session: AsyncSession,
    ) -> tuple[dict[str, Any], list[uuid.UUID], list[dict[str, Any]]]:
        author = await session.get(User, identity.user_id)
        assert author is not None
        posted = await service.post_message(
            session,
            services.settings,
            author,
            job.channel_id,
            text,
            reply_to_id=job.message_id,
            metadata=meta,
            chain_depth=(mention_depth or 0) + 1,
            mention_job_id=job.id,
        )
        await jobs.finish(session, job.id, posted.message.id)
        await usage.record(session, identity, posted.message.id, result)
        notices = [message_out(n) for n in posted.notices]
        return message_out(posted.message), [j.orchestrator_id for j in posted.jobs], notices

    try:
        out, woken, notices = await services.database.run(store, name="reply:store")
    except IntegrityError:
        return Outcome.DUPLICATE  # another owner answered this job first; one reply stands
    except _FINAL as exc:  # left the channel (or it went) while the model was writing
        return await _fail(services, identity, job, exc.message)
    services.metrics.reply_posted(
        provider=str(getattr(result, "provider", None) or services.generator.name),
        model=result.model,
        usage=result.usage,
        latency_s=(utcnow() - request.mention.created_at).total_seconds(),
    )
    await services.messenger.published(out, woken, notices)
    return Outcome.REPLIED


async def _post_notice(
    services: ReplyServices,
    identity: Identity,
    job: MentionJob | None,
    channel_id: uuid.UUID,
    content: str,
    kind: str,
    reason: str,
) -> dict[str, Any] | None:
    """A short system message in the channel, written by the orchestrator's account.
    With a job, it is the job's one answer (it closes the job as failed)."""

    async def store(session: AsyncSession) -> dict[str, Any]:
        notice = Message(
            organization_id=identity.organization_id,
            channel_id=channel_id,
            author_id=identity.user_id,
            content=content,
            reply_to_id=job.message_id if job else None,
            mention_job_id=job.id if job else None,
            meta={
                "system": True,
                "kind": kind,
                "reason": reason,
                "orchestrator_id": str(identity.orchestrator_id),
            },
        )
        session.add(notice)
        await session.flush()
        if job is not None:
            await jobs.finish(session, job.id, notice.id, failed_reason=reason)
        return message_out(notice)

    try:
        out = await services.database.run(store, name="reply:notice")
    except IntegrityError:
        return None
    await services.messenger.published(out)
    return out


async def _fail(
    services: ReplyServices,
    identity: Identity,
    job: MentionJob,
    reason: str,
    shown: str | None = None,
) -> Outcome:
    """Post the job's failure notice (saying `shown`, or else `reason`), close it as failed
    with `reason`, and tell the admins."""
    content = f"⚠ {identity.name} could not answer this message: {shown or reason}"
    posted = await _post_notice(
        services, identity, job, job.channel_id, content, "reply_failed", reason
    )
    if posted is None:
        return Outcome.DUPLICATE
    services.metrics.reply_failures.inc()
    if services.on_failure is not None:
        await services.on_failure(identity, job, reason)
    return Outcome.FAILED


async def tell_waiting(
    services: ReplyServices,
    identity: Identity,
    kind: str,
    text: str,
    *,
    claimed_too: bool = True,
) -> None:
    """Tell the orchestrator's waiting mentions (not told yet) why they wait."""

    async def store(session: AsyncSession) -> list[dict[str, Any]]:
        told = await waiting.tell_pending(
            session,
            identity.orchestrator_id,
            identity.user_id,
            identity.name,
            kind,
            text,
            claimed_too=claimed_too,
        )
        return [message_out(m) for m in told]

    for notice in await services.database.run(store, name="reply:tell-waiting"):
        await services.messenger.published(notice)


async def _told_recently(session: AsyncSession, channel_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(Message.id).where(
            Message.channel_id == channel_id,
            Message.created_at >= utcnow() - RATE_WINDOW,
            Message.meta["kind"].as_string() == "rate_limited",
        )
    )
    return found is not None


async def _tell_deferred(
    services: ReplyServices, identity: Identity, channel_id: uuid.UUID, until: datetime
) -> None:
    """Past the per-channel reply limit the job waits; the channel is told why, once."""
    limit = services.settings.mention_replies_per_channel_per_minute
    wait = max(1, int((until - utcnow()).total_seconds()) + 1)
    content = (
        f"⏸ Orchestrator replies in this channel are paused: the limit of {limit} per "
        f"minute is reached. Waiting mentions will be answered in about {wait} s."
    )
    await _post_notice(services, identity, None, channel_id, content, "rate_limited", "limit")
