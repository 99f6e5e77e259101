"""What a daemon needs from its manager, in one object: settings, storage, the reply
services, and the hooks through which it reports status changes, events and crashes.
Batched writes (activation, status, events) live here so ten thousand daemons cost a
handful of statements."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from neolith_orchestrator.chat import jobs
from neolith_orchestrator.config import Settings
from neolith_orchestrator.daemons import store
from neolith_orchestrator.daemons.batch import Batcher
from neolith_orchestrator.daemons.journal import Journal
from neolith_orchestrator.daemons.reply import ReplyServices
from neolith_orchestrator.daemons.status import DaemonStatus, row_status
from neolith_orchestrator.db.engine import Database

if TYPE_CHECKING:
    from neolith_orchestrator.daemons.daemon import OrchestratorDaemon


class Supervisor(Protocol):
    def crashed(self, daemon: OrchestratorDaemon, exc: BaseException) -> None: ...

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
        self.lease_ttl = timedelta(milliseconds=3 * settings.daemon_heartbeat_interval)
        self._activations: Batcher[uuid.UUID, bool] = Batcher("activate", self._activate_many)

    def start(self) -> None:
        self._activations.start()
        self.journal.start()

    async def aclose(self) -> None:
        await self._activations.aclose()
        await self.journal.aclose()

    async def activate(self, orchestrator_id: uuid.UUID) -> bool:
        """Take the lease (batched with every other daemon starting now)."""
        return await self._activations.submit(orchestrator_id)

    async def _activate_many(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, bool]:
        async with self.database.transaction() as session:
            held = await store.acquire_leases(session, ids, self.instance_id, self.lease_ttl)
        return {oid: oid in held for oid in ids}

    async def deactivate(self, orchestrator_id: uuid.UUID, unfinished: list[uuid.UUID]) -> None:
        """Give unfinished jobs back to the queue and let go of the lease."""
        async with self.database.transaction() as session:
            await jobs.release(session, unfinished)
            await store.release_leases(session, [orchestrator_id], self.instance_id)

    def presence(self, daemon: OrchestratorDaemon) -> str:
        return row_status(daemon.status, busy=daemon.active_conversations > 0).value

    async def status_changed(
        self, daemon: OrchestratorDaemon, previous: DaemonStatus, reason: str | None
    ) -> None:
        row = row_status(daemon.status)
        self.journal.status(daemon.orchestrator_id, row, reason, daemon.snapshot())

    def presence_changed(self, daemon: OrchestratorDaemon) -> None:
        """BUSY while a reply is being written, ONLINE again after (coalesced writes)."""
        if daemon.status in (DaemonStatus.RUNNING, DaemonStatus.PAUSED):
            busy = daemon.active_conversations > 0
            self.journal.status(
                daemon.orchestrator_id, row_status(daemon.status, busy), None, daemon.snapshot()
            )

    def crashed(self, daemon: OrchestratorDaemon, exc: BaseException) -> None:
        self._supervisor.crashed(daemon, exc)

    async def forward(
        self, daemon: OrchestratorDaemon, event: str, payload: dict[str, Any]
    ) -> None:
        await self._supervisor.forward(daemon, event, payload)
