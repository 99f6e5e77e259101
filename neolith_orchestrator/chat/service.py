"""Channels, membership and messages. Services take the session first and only flush; the
caller owns the transaction. Every query starts from the caller's organization, so another
tenant's rows are simply not found."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.chat import waiting
from neolith_orchestrator.chat.mentions import parse_mentions
from neolith_orchestrator.chat.notify import notify
from neolith_orchestrator.config import Settings
from neolith_orchestrator.db.models import (
    Channel,
    ChannelMember,
    MentionJob,
    Message,
    Orchestrator,
    User,
)
from neolith_orchestrator.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

CHANNEL_NAME_MAX = 80
CLIENT_ID_MAX = 64


@dataclass
class Posted:
    """A stored message and the mention jobs written with it, in one transaction.
    `created` is False when a re-send found the message its `client_id` already stored."""

    message: Message
    jobs: list[MentionJob] = field(default_factory=list)
    created: bool = True
    # Told in the channel: a mentioned orchestrator cannot answer now (`chat.waiting`).
    notices: list[Message] = field(default_factory=list)


async def get_channel(session: AsyncSession, org_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
    channel = await session.scalar(
        select(Channel).where(Channel.organization_id == org_id, Channel.id == channel_id)
    )
    if channel is None:
        raise NotFound("channel not found")
    return channel


async def is_member(session: AsyncSession, channel_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(
            exists().where(ChannelMember.channel_id == channel_id, ChannelMember.user_id == user_id)
        )
    )
    return bool(found)


async def create_channel(
    session: AsyncSession, creator: User, name: str, topic: str = ""
) -> Channel:
    """Create a channel in the creator's organization; the creator joins it."""
    name = name.strip() if isinstance(name, str) else name
    if not isinstance(name, str) or not name or len(name) > CHANNEL_NAME_MAX:
        raise ValidationFailed(f"name: must be 1 to {CHANNEL_NAME_MAX} characters")
    if not isinstance(topic, str) or len(topic) > 500:
        raise ValidationFailed("topic: must be a string of at most 500 characters")
    clash = await session.scalar(
        select(Channel.id).where(
            Channel.organization_id == creator.organization_id, Channel.name == name
        )
    )
    if clash is not None:
        raise Conflict(f"a channel named {name!r} already exists")
    channel = Channel(
        organization_id=creator.organization_id, name=name, topic=topic, created_by=creator.id
    )
    session.add(channel)
    await session.flush()
    session.add(
        ChannelMember(
            channel_id=channel.id, user_id=creator.id, organization_id=channel.organization_id
        )
    )
    await session.flush()
    return channel


async def add_member(
    session: AsyncSession, org_id: uuid.UUID, channel_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    """Add a user of the same organization to a channel. False when already a member."""
    await get_channel(session, org_id, channel_id)
    user = await session.scalar(
        select(User).where(User.organization_id == org_id, User.id == user_id)
    )
    if user is None:
        raise NotFound("user not found")
    if await is_member(session, channel_id, user_id):
        return False
    session.add(ChannelMember(channel_id=channel_id, user_id=user_id, organization_id=org_id))
    try:
        await session.flush()
    except IntegrityError:  # a concurrent join won the race
        return False
    return True


async def remove_member(
    session: AsyncSession, org_id: uuid.UUID, channel_id: uuid.UUID, user_id: uuid.UUID
) -> bool:
    await get_channel(session, org_id, channel_id)
    member = await session.get(ChannelMember, (channel_id, user_id))
    if member is None:
        return False
    await session.delete(member)
    await session.flush()
    return True


async def list_channels(session: AsyncSession, user: User) -> list[tuple[Channel, bool]]:
    """The organization's channels, each with whether `user` is a member."""
    member = exists().where(
        ChannelMember.channel_id == Channel.id, ChannelMember.user_id == user.id
    )
    rows = await session.execute(
        select(Channel, member.label("is_member"))
        .where(Channel.organization_id == user.organization_id)
        .order_by(Channel.name)
    )
    return [(channel, bool(flag)) for channel, flag in rows.all()]


async def user_channel_ids(session: AsyncSession, user: User) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(ChannelMember.channel_id).where(
            ChannelMember.user_id == user.id, ChannelMember.organization_id == user.organization_id
        )
    )
    return list(rows)


async def list_messages(
    session: AsyncSession,
    org_id: uuid.UUID,
    channel_id: uuid.UUID,
    *,
    before: uuid.UUID | None = None,
    limit: int = 50,
) -> list[Message]:
    """A page of a channel's messages, newest last; `before` pages back by message id."""
    if limit < 1 or limit > 200:
        raise ValidationFailed("limit: must be between 1 and 200")
    await get_channel(session, org_id, channel_id)
    stmt = select(Message).where(
        Message.organization_id == org_id, Message.channel_id == channel_id
    )
    if before is not None:
        stmt = stmt.where(Message.id < before)
    rows = await session.scalars(stmt.order_by(Message.id.desc()).limit(limit))
    return list(reversed(list(rows)))


def validate_client_id(client_id: Any) -> str | None:
    if client_id is None:
        return None
    if not isinstance(client_id, str):
        raise ValidationFailed("client_id: must be a string")
    if not client_id or len(client_id) > CLIENT_ID_MAX:
        raise ValidationFailed(f"client_id: must be 1 to {CLIENT_ID_MAX} characters")
    return client_id


async def _sent_before(
    session: AsyncSession, author: User, channel_id: uuid.UUID, client_id: str
) -> Message | None:
    return await session.scalar(
        select(Message).where(
            Message.organization_id == author.organization_id,
            Message.channel_id == channel_id,
            Message.author_id == author.id,
            Message.client_id == client_id,
        )
    )


def validate_content(content: Any, settings: Settings) -> str:
    if not isinstance(content, str):
        raise ValidationFailed("content: must be a string")
    if not content.strip():
        raise ValidationFailed("content: must not be empty")
    if len(content) > settings.message_max_length:
        raise ValidationFailed(f"content: must be at most {settings.message_max_length} characters")
    return content


async def post_message(
    session: AsyncSession,
    settings: Settings,
    author: User,
    channel_id: uuid.UUID,
    content: Any,
    *,
    reply_to_id: uuid.UUID | None = None,
    metadata: dict[str, Any] | None = None,
    chain_depth: int = 0,
    mention_job_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
    client_id: Any = None,
) -> Posted:
    """Store a message and, in the same transaction, one mention job per orchestrator it
    mentions. Only orchestrators of the author's organization who belong to the channel
    count; an orchestrator never gets a job for its own message; a chain of orchestrators
    mentioning each other stops at `mention_max_chain_depth`. A `client_id` the author
    already used in this channel returns the message stored then (`created` False) and
    stores nothing: a client re-sending after a lost acknowledgement posts once."""
    content = validate_content(content, settings)
    client_id = validate_client_id(client_id)
    org_id = author.organization_id
    await get_channel(session, org_id, channel_id)
    if not await is_member(session, channel_id, author.id):
        raise PermissionDenied("you are not a member of this channel")
    if client_id is not None:
        earlier = await _sent_before(session, author, channel_id, client_id)
        if earlier is not None:
            return Posted(earlier, created=False)
    if reply_to_id is not None:
        parent = await session.scalar(
            select(Message.id).where(
                Message.organization_id == org_id,
                Message.channel_id == channel_id,
                Message.id == reply_to_id,
            )
        )
        if parent is None:
            raise ValidationFailed("reply_to_id: no such message in this channel")
    # Who is mentioned is known before the message is written, so the message goes in
    # once, with its "mentions" already in its metadata.
    targets: dict[uuid.UUID, tuple[Orchestrator, str]] = {}
    handles = parse_mentions(content) if chain_depth < settings.mention_max_chain_depth else []
    if handles:
        found = await session.execute(
            select(Orchestrator, User.name)
            .join(User, User.id == Orchestrator.user_id)
            .join(
                ChannelMember,
                and_(ChannelMember.user_id == User.id, ChannelMember.channel_id == channel_id),
            )
            .where(
                User.organization_id == org_id,
                Orchestrator.organization_id == org_id,
                func.lower(User.handle).in_(handles),
                User.id != author.id,
            )
        )
        targets = {row.id: (row, name) for row, name in found.all()}
    meta = dict(metadata or {})
    if targets:
        meta = {**meta, "mentions": [str(oid) for oid in targets]}
    message = Message(
        organization_id=org_id,
        channel_id=channel_id,
        author_id=author.id,
        content=content,
        reply_to_id=reply_to_id,
        chain_depth=chain_depth,
        mention_job_id=mention_job_id,
        client_id=client_id,
        meta=meta,
    )
    if created_at is not None:
        message.created_at = created_at
    if client_id is None:
        session.add(message)
        await session.flush()
    else:
        try:
            # A savepoint: a concurrent re-send that stored first makes this insert fail
            # on the unique (organization, channel, author, client_id) index; then that
            # one is the answer, and our transaction goes on.
            async with session.begin_nested():
                session.add(message)
                await session.flush()
        except IntegrityError:
            earlier = await _sent_before(session, author, channel_id, client_id)
            if earlier is None:
                raise
            return Posted(earlier, created=False)
    posted = Posted(message)
    for orchestrator_id in targets:
        job = MentionJob(
            organization_id=org_id,
            orchestrator_id=orchestrator_id,
            message_id=message.id,
            channel_id=channel_id,
        )
        session.add(job)
        posted.jobs.append(job)
    if posted.jobs:
        await session.flush()
        await notify(session, [j.orchestrator_id for j in posted.jobs])
        posted.notices = await waiting.tell(session, posted.jobs, targets)
    return posted


async def list_members(
    session: AsyncSession, org_id: uuid.UUID, channel_id: uuid.UUID
) -> list[User]:
    """The users in a channel of `org_id`, by handle."""
    await get_channel(session, org_id, channel_id)
    rows = await session.scalars(
        select(User)
        .join(ChannelMember, ChannelMember.user_id == User.id)
        .where(
            ChannelMember.channel_id == channel_id,
            ChannelMember.organization_id == org_id,
            User.organization_id == org_id,
        )
        .order_by(User.handle)
    )
    return list(rows)
