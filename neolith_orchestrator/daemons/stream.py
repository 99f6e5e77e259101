"""A reply's text on its way to the channel: `message:delta` pushes, coalesced.

A model streams a reply as many small pieces (a short answer is seventy-odd); pushing each
as its own Socket.IO emit costs the server more than storing the reply. The first piece is
pushed at once (the reader sees the reply start), then at most one push per
`MESSAGE_DELTA_INTERVAL`, carrying every piece that came meanwhile, and `flush()` pushes
what is held before the reply is stored. Joined in order, the pushes are the same text.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from neolith_orchestrator.realtime.emitter import Emitter, channel_room


class ChannelStream:
    """The `ReplySink` of one reply: pushes to the channel room as `message:delta`."""

    def __init__(
        self,
        emitter: Emitter,
        *,
        channel_id: uuid.UUID,
        job_id: uuid.UUID,
        reply_to_id: uuid.UUID,
        author_id: uuid.UUID,
        orchestrator_id: uuid.UUID,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emitter = emitter
        self._room = channel_room(channel_id)
        self._base = {
            "channel_id": str(channel_id),
            "job_id": str(job_id),
            "reply_to_id": str(reply_to_id),
            "author_id": str(author_id),
            "orchestrator_id": str(orchestrator_id),
        }
        self._interval = interval
        self._clock = clock
        self._held: list[str] = []
        self._last_push: float | None = None
        self.sequence = 0

    async def delta(self, text: str) -> None:
        self._held.append(text)
        if self._last_push is None or self._clock() - self._last_push >= self._interval:
            await self._push()

    async def reset(self) -> None:
        """A retry starts the reply over: what is held is dropped, and the retry's first
        piece goes out at once."""
        self._held.clear()
        self._last_push = None
        await self._emit("", reset=True)

    async def flush(self) -> None:
        """Push what is held (before the reply is stored, so its text is complete)."""
        if self._held:
            await self._push()

    async def _push(self) -> None:
        text = "".join(self._held)
        self._held.clear()
        self._last_push = self._clock()
        await self._emit(text, reset=False)

    async def _emit(self, text: str, *, reset: bool) -> None:
        self.sequence += 1
        data: dict[str, Any] = {**self._base, "delta": text, "seq": self.sequence, "reset": reset}
        await self._emitter.emit("message:delta", data, room=self._room)
