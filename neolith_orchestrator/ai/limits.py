"""Fair use of the model: a global cap on concurrent requests and a cap per organization.

A request takes its organization's slot first, then a global slot. A tenant that floods
therefore queues behind its own cap and never holds more than `per_org_limit` global
slots, so the other tenants keep getting theirs. Waiters are served first come, first
served: a freed slot is handed straight to the oldest waiter, so no newcomer overtakes it
(a plain `asyncio.Semaphore` lets a running task grab a slot before a woken waiter runs).
Per-organization counters exist only while the organization has requests in use or waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass

from neolith_orchestrator.config import Settings


class _Slots:
    """A FIFO semaphore with direct hand-off and exact counters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    @property
    def idle(self) -> bool:
        return self.in_use == 0 and not self._waiters

    async def acquire(self) -> None:
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the waiter; in_use is unchanged
                return
        self.in_use -= 1


@dataclass(frozen=True, slots=True)
class LimitsSnapshot:
    """Counters for the runtime status."""

    global_limit: int
    global_in_use: int
    global_waiting: int
    per_org_limit: int
    orgs_active: int
    org_slots_in_use: int
    org_waiting: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class ModelLimits:
    """Caps on concurrent model requests, globally and per organization."""

    def __init__(self, *, global_limit: int, per_org_limit: int) -> None:
        if global_limit < 1 or per_org_limit < 1:
            raise ValueError("limits must be at least 1")
        self.global_limit = global_limit
        self.per_org_limit = per_org_limit
        self._global = _Slots(global_limit)
        self._orgs: dict[uuid.UUID, _Slots] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelLimits:
        return cls(
            global_limit=settings.model_max_concurrency,
            per_org_limit=settings.model_max_concurrency_per_org,
        )

    @contextlib.asynccontextmanager
    async def org_slot(self, organization_id: uuid.UUID) -> AsyncIterator[None]:
        """Hold one of the organization's slots for the body of the `async with`."""
        slots = self._orgs.get(organization_id)
        if slots is None:
            slots = self._orgs[organization_id] = _Slots(self.per_org_limit)
        try:
            await slots.acquire()
            try:
                yield
            finally:
                slots.release()
        finally:
            if slots.idle and self._orgs.get(organization_id) is slots:
                del self._orgs[organization_id]

    @contextlib.asynccontextmanager
    async def global_slot(self) -> AsyncIterator[None]:
        """Hold one of the global slots for the body of the `async with`."""
        await self._global.acquire()
        try:
            yield
        finally:
            self._global.release()

    @contextlib.asynccontextmanager
    async def slot(self, organization_id: uuid.UUID) -> AsyncIterator[None]:
        """Hold the organization's slot, then a global slot; both are released on exit."""
        async with self.org_slot(organization_id), self.global_slot():
            yield

    def org_usage(self, organization_id: uuid.UUID) -> tuple[int, int]:
        """(in use, waiting) for one organization."""
        slots = self._orgs.get(organization_id)
        return (slots.in_use, slots.waiting) if slots else (0, 0)

    def snapshot(self) -> LimitsSnapshot:
        return LimitsSnapshot(
            global_limit=self.global_limit,
            global_in_use=self._global.in_use,
            global_waiting=self._global.waiting,
            per_org_limit=self.per_org_limit,
            orgs_active=len(self._orgs),
            org_slots_in_use=sum(s.in_use for s in self._orgs.values()),
            org_waiting=sum(s.waiting for s in self._orgs.values()),
        )
