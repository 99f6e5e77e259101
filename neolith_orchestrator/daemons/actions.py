"""What an orchestrator can do besides replying, through the same services and permission
checks as a person: send_message, react, update_status, join_channel, leave_channel."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.chat import service
from neolith_orchestrator.chat.mentions import parse_mentions
from neolith_orchestrator.db.models import MentionJob, Message, Orchestrator, User
from neolith_orchestrator.errors import NotFound, PermissionDenied, ValidationFailed
from neolith_orchestrator.realtime.emitter import channel_room, org_room

if TYPE_CHECKING:
    from neolith_orchestrator.daemons.reply import Identity
    from neolith_orchestrator.daemons.runtime import DaemonRuntime

ACTIONS = ("send_message", "react", "update_status", "join_channel", "leave_channel")


def _uuid(action: dict[str, Any], key: str) -> uuid.UUID:
    value = action.get(key)
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError as exc:
        raise ValidationFailed(f"{key}: must be a UUID") from exc


async def execute(rt: DaemonRuntime, identity: Identity, action: dict[str, Any]) -> dict[str, Any]:
    kind = action.get("type")
    if kind not in ACTIONS:
        raise ValidationFailed(f"type: must be one of {', '.join(ACTIONS)}")
    if kind == "send_message":
        async with rt.database.transaction() as session:
            author = await session.get(User, identity.user_id)
        assert author is not None
        reply_to = action.get("reply_to_id")
        return await rt.messenger.post(
            author,
            _uuid(action, "channel_id"),
            action.get("content"),
            reply_to_id=_uuid(action, "reply_to_id") if reply_to else None,
            chain_depth=int(action.get("chain_depth", 1)),
        )
    if kind == "react":
        return await _react(rt, identity, action)
    if kind == "update_status":
        text = action.get("status")
        if not isinstance(text, str) or len(text) > 200:
            raise ValidationFailed("status: must be a string of at most 200 characters")
        async with rt.database.transaction() as session:
            orchestrator = await session.get(Orchestrator, identity.orchestrator_id)
            assert orchestrator is not None
            orchestrator.status_message = text or None
        payload = {
            "user_id": str(identity.user_id),
            "orchestrator_id": str(identity.orchestrator_id),
            "status_message": text or None,
            "is_orchestrator": True,
        }
        await rt.reply_services.emitter.emit(
            "presence:update", payload, room=org_room(identity.organization_id)
        )
        return payload
    channel_id = _uuid(action, "channel_id")
    async with rt.database.transaction() as session:
        if kind == "join_channel":
            changed = await service.add_member(
                session, identity.organization_id, channel_id, identity.user_id
            )
        else:
            changed = await service.remove_member(
                session, identity.organization_id, channel_id, identity.user_id
            )
    return {"channel_id": str(channel_id), "changed": changed}


async def _message(session: AsyncSession, org_id: uuid.UUID, message_id: uuid.UUID) -> Message:
    message = await session.scalar(
        select(Message).where(Message.organization_id == org_id, Message.id == message_id)
    )
    if message is None:
        raise NotFound("message not found")
    return message


async def _react(rt: DaemonRuntime, identity: Identity, action: dict[str, Any]) -> dict[str, Any]:
    emoji = action.get("emoji")
    if not isinstance(emoji, str) or not 1 <= len(emoji) <= 32:
        raise ValidationFailed("emoji: must be 1 to 32 characters")
    message_id = _uuid(action, "message_id")
    async with rt.database.transaction() as session:
        message = await _message(session, identity.organization_id, message_id)
        if not await service.is_member(session, message.channel_id, identity.user_id):
            raise PermissionDenied("you are not a member of this channel")
        reactions = {k: list(v) for k, v in (message.meta or {}).get("reactions", {}).items()}
        users = reactions.setdefault(emoji, [])
        if str(identity.user_id) not in users:
            users.append(str(identity.user_id))
        message.meta = {**(message.meta or {}), "reactions": reactions}
        channel_id = message.channel_id
    payload = {"message_id": str(message_id), "channel_id": str(channel_id), "reactions": reactions}
    await rt.reply_services.emitter.emit("message:reaction", payload, room=channel_room(channel_id))
    return payload


async def enqueue_mention(rt: DaemonRuntime, identity: Identity, message_id: uuid.UUID) -> bool:
    """Make sure a stored message of this organization that mentions the orchestrator has
    its job (the unique constraint makes this idempotent)."""
    async with rt.database.transaction() as session:
        message = await _message(session, identity.organization_id, message_id)
        if identity.handle.lower() not in parse_mentions(message.content):
            raise ValidationFailed(f"the message does not mention @{identity.handle}")
        if message.author_id == identity.user_id:
            return False
        if not await service.is_member(session, message.channel_id, identity.user_id):
            raise PermissionDenied("the orchestrator is not a member of this channel")
        exists = await session.scalar(
            select(MentionJob.id).where(
                MentionJob.orchestrator_id == identity.orchestrator_id,
                MentionJob.message_id == message_id,
            )
        )
        if exists is not None:
            return False
        session.add(
            MentionJob(
                organization_id=identity.organization_id,
                orchestrator_id=identity.orchestrator_id,
                message_id=message_id,
                channel_id=message.channel_id,
            )
        )
        try:
            await session.flush()
        except IntegrityError:
            return False
    return True
