"""Write-behind for daemon status and the event log.

Status changes and events are queued in memory and written by one owned task in a single
transaction every `interval` (a status only where this instance holds the lease, or nobody
does: another instance's daemon is that instance's to report); only after that commit are
`daemon:status` (to the organization's admins) and `presence:update` (to the organization)
pushed to clients. Several changes to one orchestrator within an interval coalesce into the
last one. The status pushed is taken when it is pushed (a snapshot callable is queued, not a
dict), so ten thousand daemons starting at once build ten thousand snapshots, not forty thousand.
`flush()` writes at once (shutdown, tests, an admin reading right after acting).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.daemons import store
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import OrchestratorStatus
from neolith_orchestrator.errors import Unavailable
from neolith_orchestrator.realtime.emitter import Emitter, admin_room, org_room

_log = logging.getLogger(__name__)
_Snapshot = dict[str, Any] | Callable[[], dict[str, Any]]


class Journal:
    def __init__(
        self, database: Database, emitter: Emitter, owner: str, interval: float = 0.05
    ) -> None:
        self._database = database
        self._owner = owner
        self._emitter = emitter
        self._interval = interval
        self._statuses: dict[uuid.UUID, tuple[OrchestratorStatus, str | None, _Snapshot]] = {}
        self._events: list[dict[str, Any]] = []
        self._dirty = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="daemon-journal")

    def status(
        self,
        orchestrator_id: uuid.UUID,
        status: OrchestratorStatus,
        reason: str | None,
        snapshot: _Snapshot,
    ) -> None:
        """Queue a row status; `snapshot` (the daemon status dict, or a callable that makes
        it) is pushed after commit."""
        self._statuses[orchestrator_id] = (status, reason, snapshot)
        self._dirty.set()

    def event(
        self,
        organization_id: uuid.UUID,
        orchestrator_id: uuid.UUID | None,
        type_: str,
        payload: dict[str, Any],
    ) -> None:
        self._events.append(
            {
                "organization_id": organization_id,
                "orchestrator_id": orchestrator_id,
                "type": type_,
                "payload": payload,
            }
        )
        self._dirty.set()

    async def flush(self) -> None:
        async with self._lock:
            statuses, self._statuses = self._statuses, {}
            events, self._events = self._events, []
            if not statuses and not events:
                return
            try:

                async def write(session: AsyncSession) -> set[uuid.UUID]:
                    written = await store.write_statuses(
                        session, {oid: (s, r) for oid, (s, r, _) in statuses.items()}, self._owner
                    )
                    await store.write_events(session, events)
                    return written

                written = await self._database.run(write, name="journal")
            except Exception as exc:
                # Keep them for the next flush rather than lose them (unless newer ones came).
                self.failures += 1
                if not isinstance(exc, Unavailable):  # an outage is logged once, elsewhere
                    _log.exception("journal flush failed; will retry")
                for oid, value in statuses.items():
                    self._statuses.setdefault(oid, value)
                self._events[:0] = events
                self._dirty.set()
                return
        for oid, (_, _, queued) in statuses.items():
            if oid not in written:
                continue  # another instance owns it: its status is that instance's to tell
            snapshot = queued() if callable(queued) else queued
            org = snapshot.get("organization_id")
            if org is None:
                continue
            await self._emitter.emit("daemon:status", snapshot, room=admin_room(org))
            await self._emitter.emit(
                "presence:update",
                {
                    "user_id": snapshot.get("user_id"),
                    "orchestrator_id": snapshot.get("orchestrator_id"),
                    "status": snapshot.get("presence"),
                    "is_orchestrator": True,
                },
                room=org_room(org),
            )

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await asyncio.sleep(self._interval)
            await self._database.wait_reachable()  # during an outage, keep what is queued
            await self.flush()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()
