"""The message flow every sender goes through (HTTP, Socket.IO, a daemon's send_message):
one transaction stores the message and its mention jobs; after the commit the message is
pushed to the channel room and the owning daemons are woken."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from neolith_orchestrator.chat import service
from neolith_orchestrator.chat.schemas import message_out
from neolith_orchestrator.config import Settings
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import User
from neolith_orchestrator.realtime.emitter import Emitter, channel_room


class JobWaker(Protocol):
    """Told, after commit, which orchestrators have new mention jobs."""

    def wake(self, orchestrator_ids: Iterable[uuid.UUID]) -> None: ...


class Messenger:
    """Posts messages for people and orchestrators alike, with the same checks."""

    def __init__(
        self, database: Database, settings: Settings, emitter: Emitter, waker: JobWaker
    ) -> None:
        self.database = database
        self.settings = settings
        self.emitter = emitter
        self.waker = waker

    async def post(
        self,
        author: User,
        channel_id: uuid.UUID,
        content: Any,
        *,
        reply_to_id: uuid.UUID | None = None,
        metadata: dict[str, Any] | None = None,
        chain_depth: int = 0,
    ) -> dict[str, Any]:
        """Store, then push and wake. Returns the stored message as clients see it."""
        out, _ = await self.submit(
            author,
            channel_id,
            content,
            reply_to_id=reply_to_id,
            metadata=metadata,
            chain_depth=chain_depth,
        )
        return out

    async def submit(
        self,
        author: User,
        channel_id: uuid.UUID,
        content: Any,
        *,
        reply_to_id: uuid.UUID | None = None,
        metadata: dict[str, Any] | None = None,
        chain_depth: int = 0,
        client_id: Any = None,
    ) -> tuple[dict[str, Any], bool]:
        """`post` for clients that may re-send: returns the message and whether it is new.
        A re-sent `client_id` returns the stored message; nothing is pushed or woken."""
        async with self.database.transaction() as session:
            posted = await service.post_message(
                session,
                self.settings,
                author,
                channel_id,
                content,
                reply_to_id=reply_to_id,
                metadata=metadata,
                chain_depth=chain_depth,
                client_id=client_id,
            )
            out = message_out(posted.message)
            woken = [job.orchestrator_id for job in posted.jobs]
            notices = [message_out(n) for n in posted.notices]
        if posted.created:
            await self.published(out, woken, notices)
        return out, posted.created

    async def published(
        self,
        message: dict[str, Any],
        woken: Iterable[uuid.UUID] = (),
        notices: Iterable[dict[str, Any]] = (),
    ) -> None:
        """After a commit: push `message:new` to the channel (the message, then any notice
        that a mentioned orchestrator cannot answer now) and wake mentioned daemons."""
        room = channel_room(message["channel_id"])
        await self.emitter.emit("message:new", message, room=room)
        for notice in notices:
            await self.emitter.emit("message:new", notice, room=room)
        self.waker.wake(woken)
