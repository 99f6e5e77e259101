"""The one place that pushes events to clients. Only an `Emitter` calls `sio.emit`, and
callers emit only after the commit that made the event true.

Rooms: `channel:<id>` (members of a channel), `org:<id>` (everyone in an organization),
`admins:<id>` (an organization's admins), `user:<id>` (one user's sockets).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

_log = logging.getLogger(__name__)


def channel_room(channel_id: uuid.UUID | str) -> str:
    return f"channel:{channel_id}"


def org_room(organization_id: uuid.UUID | str) -> str:
    return f"org:{organization_id}"


def admin_room(organization_id: uuid.UUID | str) -> str:
    return f"admins:{organization_id}"


def user_room(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}"


class Emitter(Protocol):
    async def emit(self, event: str, data: dict[str, Any], *, room: str) -> None: ...


class NullEmitter:
    """Drops every event (a manager without a server, e.g. the CLI)."""

    async def emit(self, event: str, data: dict[str, Any], *, room: str) -> None:
        return None


@dataclass
class RecordingEmitter:
    """Keeps every event in order: a test double at the outer boundary, not a mock of ours."""

    events: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)

    async def emit(self, event: str, data: dict[str, Any], *, room: str) -> None:
        self.events.append((event, data, room))

    def of(self, event: str) -> list[dict[str, Any]]:
        return [data for name, data, _ in self.events if name == event]


class SocketIOEmitter:
    """Emits through a python-socketio `AsyncServer`. A failed push is logged, never raised:
    the state it reports is already committed and clients can re-read it."""

    def __init__(self, sio: Any) -> None:
        self._sio = sio

    async def emit(self, event: str, data: dict[str, Any], *, room: str) -> None:
        try:
            await self._sio.emit(event, data, room=room)
        except Exception:
            _log.exception("emit %s to %s failed", event, room)
