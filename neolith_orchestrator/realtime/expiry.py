"""One timer for the earliest session expiry among connected sockets.

A socket must stop receiving its channels the moment its session expires, not at the next
sweep. Sockets connect far more often than sessions expire, so this holds a single loop
timer (no task, no query) armed for the earliest deadline; when it fires, an owned task
closes what has expired and the owner arms it for the next deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from neolith_orchestrator.db.types import utcnow

_log = logging.getLogger(__name__)

# Fire just after the deadline, so the expiry check that follows sees it passed even when
# the wall clock and the loop's clock disagree by a little.
_MARGIN_S = 0.01


class ExpiryTimer:
    """Runs `fire` once the earliest scheduled deadline has passed."""

    def __init__(self, fire: Callable[[], Awaitable[None]], *, name: str) -> None:
        self._fire = fire
        self._name = name
        self._handle: asyncio.TimerHandle | None = None
        self._deadline: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def schedule(self, deadline: datetime) -> None:
        """Make sure `fire` runs at `deadline` (an earlier armed deadline covers it: `fire`
        re-arms for what is left)."""
        if self._handle is not None and self._deadline is not None and self._deadline <= deadline:
            return
        if self._handle is not None:
            self._handle.cancel()
        loop = asyncio.get_running_loop()
        delay = max((deadline - utcnow()).total_seconds(), 0.0) + _MARGIN_S
        self._deadline = deadline
        self._handle = loop.call_later(delay, self._start)

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done():
            # One run at a time; look again shortly rather than lose this deadline.
            self._handle = loop.call_later(_MARGIN_S, self._start)
            return
        self._handle, self._deadline = None, None
        self._task = loop.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        try:
            await self._fire()
        except Exception:
            _log.exception("%s failed", self._name)

    async def close(self) -> None:
        """Disarm, and cancel and await a run in progress."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._deadline = None, None
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
