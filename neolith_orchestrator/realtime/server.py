"""The Socket.IO server: authenticates sockets at connect, puts them in their rooms, takes
`message:send`, and reports people's presence. Everything it pushes goes through the app's
`Emitter`; the daemons and the manager push their own events the same way.

A socket connects with `auth={"token": ...}` and joins `user:<id>`, `org:<id>`,
`admins:<org>` (admins) and `channel:<id>` for each channel its user belongs to.
`message:send` takes `{"channel_id", "content", "reply_to_id"?, "client_id"?}` and
acknowledges with `{"ok": true, "message": {...}, "created": bool}` (`created` false: a
re-sent `client_id`, the stored message) or `{"ok": false, "error": {"code", "message"}}`
(with `details` per field for a validation error, as over HTTP).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import socketio

from neolith_orchestrator.chat import service as chat
from neolith_orchestrator.context import AppContext
from neolith_orchestrator.db.models import OrchestratorStatus, User
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import AuthenticationFailed, OrchestratorError, ValidationFailed
from neolith_orchestrator.http import inputs
from neolith_orchestrator.http.errors import validation_details
from neolith_orchestrator.realtime.cluster import ClusterManager
from neolith_orchestrator.realtime.emitter import (
    Emitter,
    admin_room,
    channel_room,
    org_room,
    user_room,
)
from neolith_orchestrator.realtime.expiry import ExpiryTimer
from neolith_orchestrator.realtime.presence import Presence

_log = logging.getLogger(__name__)

SOCKET_EXPIRY_TASK = "neolith:socket-expiry"


@dataclass(frozen=True, slots=True)
class _Socket:
    user: User
    session_id: uuid.UUID
    expires_at: datetime


def _failure(exc: OrchestratorError) -> dict[str, Any]:
    """The ack of a refused `message:send`: the HTTP error body, `details` included."""
    error: dict[str, Any] = exc.to_dict()["error"]
    if isinstance(exc, ValidationFailed):
        error["details"] = validation_details(exc)
    return {"ok": False, "error": error}


class RealtimeServer:
    """Socket.IO event handlers and the socket ↔ user bookkeeping of this process."""

    def __init__(self, sio: socketio.AsyncServer, emitter: Emitter) -> None:
        self.sio = sio
        self.emitter = emitter
        self._ctx: AppContext | None = None
        self._sockets: dict[str, _Socket] = {}
        self._by_user: dict[uuid.UUID, set[str]] = {}
        # Counts people online across instances when they share Redis (`use_presence`).
        self.presence = Presence()
        # message:send handlers in flight, drained before the app's resources close.
        self._inflight: set[asyncio.Task[Any]] = set()
        sio.on("connect", self._connect)
        sio.on("disconnect", self._disconnect)
        sio.on("message:send", self._message_send)
        self._expiry = ExpiryTimer(self.close_expired, name=SOCKET_EXPIRY_TASK)

    async def use_presence(self, presence: Presence) -> None:
        """Count presence with `presence` (shared through Redis by several instances)."""
        await presence.clear_instance()
        self.presence = presence

    def use_local_presence(self) -> None:
        """Count presence on this instance alone again (the shared Redis is closing)."""
        self.presence = Presence()

    def attach(self, ctx: AppContext | None) -> None:
        """Start (or, with None, stop) serving with the app's running context."""
        self._ctx = ctx

    @property
    def connections(self) -> int:
        return len(self._sockets)

    def connections_of(self, organization_id: uuid.UUID) -> int:
        """Connected sockets of one organization's people and orchestrators."""
        return sum(1 for s in self._sockets.values() if s.user.organization_id == organization_id)

    def sids_of(self, user_id: uuid.UUID) -> frozenset[str]:
        return frozenset(self._by_user.get(user_id, ()))

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        ctx = self._ctx
        if ctx is None:
            raise socketio.exceptions.ConnectionRefusedError(
                {"code": "unavailable", "message": "the service is not running"}
            )
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            if token is None:
                raise AuthenticationFailed('connect with auth={"token": "<bearer token>"}')
            principal = await ctx.auth.authenticate(token)
            # Into the user's room before reading their channels: a join made meanwhile
            # (here or on another instance) is either in what we read or reaches this room.
            await self.sio.enter_room(sid, user_room(principal.user.id))
            async with ctx.database.transaction() as session:
                channel_ids = await chat.user_channel_ids(session, principal.user)
        except OrchestratorError as exc:
            raise socketio.exceptions.ConnectionRefusedError(exc.to_dict()["error"]) from None
        user = principal.user
        first = user.id not in self._by_user
        # Registered before the presence count awaits: a disconnect meanwhile counts it out.
        self._sockets[sid] = _Socket(user, principal.session_id, principal.expires_at)
        self._by_user.setdefault(user.id, set()).add(sid)
        if not user.is_orchestrator and await self.presence.arrived(
            user.id, sid, locally_first=first
        ):
            # Before joining the org room: this socket's CONNECT has not been sent yet.
            await self._presence(user, OrchestratorStatus.ONLINE)
        self._expiry.schedule(principal.expires_at)
        rooms = [org_room(user.organization_id)]
        if user.is_admin:
            rooms.append(admin_room(user.organization_id))
        rooms += [channel_room(c) for c in channel_ids]
        for room in rooms:
            await self.sio.enter_room(sid, room)

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        socket = self._sockets.pop(sid, None)
        if socket is None:
            return
        user = socket.user
        sids = self._by_user.get(user.id, set())
        sids.discard(sid)
        if not sids:
            self._by_user.pop(user.id, None)
        if not user.is_orchestrator and await self.presence.left(
            user.id, sid, locally_last=not sids
        ):
            await self._presence(user, OrchestratorStatus.OFFLINE)

    async def _presence(self, user: User, status: OrchestratorStatus) -> None:
        payload = {
            "user_id": str(user.id),
            "organization_id": str(user.organization_id),
            "handle": user.handle,
            "status": status.value,
            "is_orchestrator": False,
        }
        await self.emitter.emit("presence:update", payload, room=org_room(user.organization_id))

    async def _message_send(self, sid: str, data: Any = None, *_extra: Any) -> dict[str, Any]:
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            return await self._post(sid, data)
        except OrchestratorError as exc:
            return _failure(exc)
        except Exception:
            _log.exception("message:send from %s failed", sid)
            return _failure(OrchestratorError("internal error; the message was not stored"))
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _post(self, sid: str, data: Any) -> dict[str, Any]:
        ctx, socket = self._ctx, self._sockets.get(sid)
        if ctx is None or socket is None:
            raise AuthenticationFailed("this socket is not authenticated")
        if utcnow() >= socket.expires_at:
            await self.sio.disconnect(sid)
            raise AuthenticationFailed("the session has expired; log in again")
        payload = inputs.parse(inputs.SocketMessageIn, data)
        message, created = await ctx.manager.messenger.submit(
            socket.user,
            payload.channel_id,
            payload.content,
            reply_to_id=payload.reply_to_id,
            client_id=payload.client_id,
        )
        return {"ok": True, "message": message, "created": created}

    async def join_channel(self, user_id: uuid.UUID, channel_id: uuid.UUID) -> None:
        """A user joined a channel: their sockets join its room, on every instance."""
        await self._follow(user_id, channel_room(channel_id), join=True)

    async def leave_channel(self, user_id: uuid.UUID, channel_id: uuid.UUID) -> None:
        """A user left a channel: their sockets leave its room, on every instance."""
        await self._follow(user_id, channel_room(channel_id), join=False)

    async def _follow(self, user_id: uuid.UUID, room: str, *, join: bool) -> None:
        manager = self.sio.manager
        if isinstance(manager, ClusterManager):
            # Other instances hold sockets of this user whose ids we do not know.
            await manager.follow(user_room(user_id), room, join=join)
            return
        # The user's room, not `_by_user`: a socket still connecting is in it already.
        for sid, _eio_sid in list(manager.get_participants("/", user_room(user_id))):
            if join:
                await self.sio.enter_room(sid, room)
            else:
                await self.sio.leave_room(sid, room)

    async def disconnect_session(self, session_id: uuid.UUID) -> None:
        """A session ended: close the sockets opened with its token."""
        for sid, socket in list(self._sockets.items()):
            if socket.session_id == session_id:
                await self.sio.disconnect(sid)

    def next_expiry(self, *, after: datetime) -> datetime | None:
        """When the first connected socket's session expires, among those still ahead of
        `after` (one already past cannot spin the timer)."""
        return min(
            (s.expires_at for s in self._sockets.values() if s.expires_at > after), default=None
        )

    async def close_expired(self) -> None:
        """Disconnect the sockets whose session has expired, then arm the timer for the next
        expiry (the timer runs this at each deadline; the session sweep too, as a backstop)."""
        now = utcnow()
        for sid, socket in list(self._sockets.items()):
            if socket.expires_at <= now:
                await self.sio.disconnect(sid)  # runs `_disconnect`: bookkeeping, presence
        upcoming = self.next_expiry(after=now)
        if upcoming is not None:
            self._expiry.schedule(upcoming)

    async def drain(self, grace: float) -> None:
        """Stop the expiry timer; let in-flight `message:send` handlers finish (up to `grace`
        s), then cancel them."""
        await self._expiry.close()
        pending = set(self._inflight)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)
