"""The JSON shapes clients rely on (DESIGN.md): add fields freely, never rename."""

from __future__ import annotations

from typing import Any

from neolith_orchestrator.db.models import Channel, Message, User


def message_out(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "organization_id": str(message.organization_id),
        "channel_id": str(message.channel_id),
        "author_id": str(message.author_id) if message.author_id else None,
        "content": message.content,
        "reply_to_id": str(message.reply_to_id) if message.reply_to_id else None,
        "created_at": message.created_at.isoformat(),
        "metadata": dict(message.meta or {}),
        "client_id": message.client_id,
    }


def channel_out(channel: Channel, *, is_member: bool | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(channel.id),
        "organization_id": str(channel.organization_id),
        "name": channel.name,
        "topic": channel.topic,
        "created_at": channel.created_at.isoformat(),
    }
    if is_member is not None:
        data["is_member"] = is_member
    return data


def user_out(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "organization_id": str(user.organization_id),
        "email": user.email,
        "name": user.name,
        "handle": user.handle,
        "is_orchestrator": user.is_orchestrator,
        "is_admin": user.is_admin,
    }
