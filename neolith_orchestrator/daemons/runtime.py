"""What a daemon needs from its manager, in one object: settings, storage, the reply
services, and the hooks through which it reports status changes, events and crashes.
Batched writes (activation, status, events) live here so ten thousand daemons cost a
handful of statements."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.chat import jobs
from neolith_orchestrator.config import Settings
from neolith_orchestrator.daemons import store
from neolith_orchestrator.daemons.batch import Batcher
from neolith_orchestrator.daemons.journal import Journal
from neolith_orchestrator.daemons.reply import ReplyServices
from neolith_orchestrator.daemons.status import Activation, DaemonStatus, row_status
from neolith_orchestrator.db.engine import Database

if TYPE_CHECKING:
    from neolith_orchestrator.daemons.daemon import OrchestratorDaemon


class Supervisor(Protocol):
    def crashed(self, daemon: OrchestratorDaemon, exc: BaseException) -> None: ...

    def wants(self, event: str) -> bool: ...

    async def forward(
        self, daemon: OrchestratorDaemon, event: str, payload: dict[str, Any]
    ) -> None: ...


class DaemonRuntime:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        instance_id: str,
        reply_services: ReplyServices,
        journal: Journal,
        supervisor: Supervisor,
    ) -> None:
        self.settings = settings
        self.database = database
        self.instance_id = instance_id
        self.reply_services = reply_services
        self.messenger = reply_services.messenger
        self.journal = journal
        self._supervisor = supervisor
        self.lease_ttl = timedelta(milliseconds=settings.lease_ttl_ms)
        # Set at shutdown: stopping daemons keep their leases, to be handed over (expired,
        # not released: a released lease is not taken over).
        self.handing_over = False
        self._activations: Batcher[uuid.UUID, Activation] = Batcher("activate", self._activate_many)
        self._deactivations: Batcher[uuid.UUID, None] = Batcher("deactivate", self._deactivate_many)
        self._to_release: dict[uuid.UUID, list[uuid.UUID]] = {}

    def start(self) -> None:
        self._activations.start()
        self._deactivations.start()
        self.journal.start()

    async def aclose(self) -> None:
        await self._activations.aclose()
        await self._deactivations.aclose()
        await self.journal.aclose()

    async def activate(self, orchestrator_id: uuid.UUID) -> Activation:
        """Take the lease (batched with every other daemon starting now), and say whether
        mentions are waiting for it."""
        return await self._activations.submit(orchestrator_id)

    async def _activate_many(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, Activation]:
        async def acquire(session: AsyncSession) -> tuple[set[uuid.UUID], dict[uuid.UUID, int]]:
            held = await store.acquire_leases(session, ids, self.instance_id, self.lease_ttl)
            return held, await jobs.pending_counts(session, held)

        held, waiting = await self.database.run(acquire, name="activate")
        return {
            oid: Activation.REFUSED
            if oid not in held
            else Activation.WORK
            if waiting.get(oid)
            else Activation.IDLE
            for oid in ids
        }

    async def deactivate(self, orchestrator_id: uuid.UUID, unfinished: list[uuid.UUID]) -> None:
        """Give unfinished jobs back to the queue and let go of the lease (batched with
        every other daemon stopping now)."""
        self._to_release.setdefault(orchestrator_id, []).extend(unfinished)
        await self._deactivations.submit(orchestrator_id)

    async def _deactivate_many(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, None]:
        unfinished = [job for oid in ids for job in self._to_release.pop(oid, ())]

        async def release(session: AsyncSession) -> None:
            await jobs.release(session, unfinished)
            if not self.handing_over:  # kept, then expired all at once after the last stop
                await store.release_leases(session, ids, self.instance_id)

        await self.database.run(release, name="deactivate")
        return dict.fromkeys(ids)

    def presence(self, daemon: OrchestratorDaemon) -> str:
        return row_status(daemon.status, busy=daemon.active_conversations > 0).value

    async def status_changed(
        self, daemon: OrchestratorDaemon, previous: DaemonStatus, reason: str | None
    ) -> None:
        row = row_status(daemon.status)
        self.journal.status(daemon.orchestrator_id, row, reason, daemon.snapshot)

    def presence_changed(self, daemon: OrchestratorDaemon) -> None:
        """BUSY while a reply is being written, ONLINE again after (coalesced writes)."""
        if daemon.status in (DaemonStatus.RUNNING, DaemonStatus.PAUSED):
            busy = daemon.active_conversations > 0
            self.journal.status(
                daemon.orchestrator_id, row_status(daemon.status, busy), None, daemon.snapshot
            )

    def crashed(self, daemon: OrchestratorDaemon, exc: BaseException) -> None:
        self._supervisor.crashed(daemon, exc)

    def wants(self, event: str) -> bool:
        """Whether the supervisor does anything with this daemon event."""
        return self._supervisor.wants(event)

    async def forward(
        self, daemon: OrchestratorDaemon, event: str, payload: dict[str, Any]
    ) -> None:
        await self._supervisor.forward(daemon, event, payload)
