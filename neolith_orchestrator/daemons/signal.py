"""`Signal`: what a daemon's worker sleeps on. Like `asyncio.Event`, plus a timeout that
costs one timer handle: no task (as `asyncio.wait_for` makes), no context-manager object
(as `asyncio.timeout` makes), no deque of waiters. Ten thousand idle daemons each hold one
while they sleep, and each wakes once per heartbeat interval to stamp its own heartbeat."""

from __future__ import annotations

import asyncio


class Signal:
    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        self._flag = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self, within: float | None = None) -> bool:
        """Wait until set, or at most `within` seconds; True when set."""
        if self._flag:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        handle = None if within is None else loop.call_later(within, _expire, waiter)
        try:
            await waiter
        finally:
            if handle is not None:
                handle.cancel()
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
                if not self._waiters:
                    self._waiters = None
        return self._flag


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
