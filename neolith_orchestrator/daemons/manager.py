"""`DaemonManager`: one per process. Starts a daemon per logged-in orchestrator, supervises
it (a crash is seen when its worker task ends and restarted under `backoff.RestartPolicy`),
runs the two sweeps, and reports through listeners, the event log and the emitter.

A daemon stopped by a database outage is not a crash: it waits for the database (one
probe with back-off and jitter for the whole process) and starts again, however long the
outage, without counting toward giving up.

In a cluster a lease makes one instance the owner of each daemon. A start refused because
another live instance holds the lease is no error: the daemon is dropped here, and the
admin views show it running on its owner (read from the orchestrator row). The orphan sweep
takes over logged-in orchestrators whose owner died or handed them over at shutdown (their
leases expired at once, after the daemons stopped and their jobs went back to the queue)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.accounts.service import get_orchestrator, list_orchestrators
from neolith_orchestrator.ai.factory import describe_generator
from neolith_orchestrator.ai.generator import ReplyGenerator
from neolith_orchestrator.ai.providers import model_choice
from neolith_orchestrator.chat import jobs
from neolith_orchestrator.chat import waiting as waiting_notes
from neolith_orchestrator.chat.messenger import Messenger
from neolith_orchestrator.chat.notify import MentionListener
from neolith_orchestrator.chat.waiting import failing
from neolith_orchestrator.config import Settings, load_settings
from neolith_orchestrator.daemons import oplog, store
from neolith_orchestrator.daemons.batch import Batcher
from neolith_orchestrator.daemons.daemon import OrchestratorDaemon
from neolith_orchestrator.daemons.journal import Journal
from neolith_orchestrator.daemons.listeners import Handler, Listeners
from neolith_orchestrator.daemons.reply import Identity, ReplyServices, tell_waiting
from neolith_orchestrator.daemons.runtime import DaemonRuntime
from neolith_orchestrator.daemons.status import DaemonStatus
from neolith_orchestrator.daemons.sweeps import Sweeps
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import MentionJob, Orchestrator, OrchestratorStatus, User
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import DaemonError, LeaseHeld, NotFound, Unavailable
from neolith_orchestrator.metrics import Metrics
from neolith_orchestrator.realtime.emitter import Emitter, admin_room

_log = logging.getLogger(__name__)

# Daemon events and the manager events they become; the lifecycle ones are also logged.
_FORWARD = {
    "started": "daemon:started",
    "stopped": "daemon:stopped",
    "error": "daemon:error",
    "status:changed": "daemon:status-changed",
    "message:processed": "daemon:message-processed",
    "message:send": "daemon:message-send",
    "action:execute": "daemon:action",
}
_LOGGED = {"daemon:started", "daemon:stopped", "daemon:error"}
OrchestratorRef = Orchestrator | User | uuid.UUID | str
# An identity is looked up by orchestrator id (False) or by user id (True).
_IdentityKey = tuple[bool, uuid.UUID]


class DaemonManager:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.instance_id = settings.instance_id
        self.listeners = Listeners()
        self.metrics = Metrics(daemons_by_status=self._count_by_status)
        self._daemons: dict[uuid.UUID, OrchestratorDaemon] = {}
        self._by_user: dict[uuid.UUID, uuid.UUID] = {}
        self._recoveries: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._running = False
        self.sweeps = Sweeps(self)
        self._database: Database | None = None
        self._runtime: DaemonRuntime | None = None
        self.generator: ReplyGenerator | None = None
        self._listener: MentionListener | None = None
        # Identities of daemons being created, loaded in one query per burst of starts.
        self._identities: Batcher[_IdentityKey, Identity | None] | None = None
        self.messenger: Messenger
        # Told the user id of each daemon taken over from another instance (the session
        # watcher, so that this instance stops it at logout or session expiry).
        self.on_takeover: Callable[[uuid.UUID], None] | None = None

    # -- owning resources -------------------------------------------------------------
    async def startup(
        self, database: Database, emitter: Emitter, generator: ReplyGenerator
    ) -> None:
        """Start the sweeps and the write-behind journal. Daemons start on login."""
        if self._running:
            return
        self._database = database
        self.generator = generator
        self.emitter = emitter
        self.messenger = Messenger(database, self.settings, emitter, self)
        services = ReplyServices(
            database,
            self.settings,
            generator,
            emitter,
            self.messenger,
            self.metrics,
            on_failure=self._reply_failed,
        )
        self._runtime = DaemonRuntime(
            self.settings,
            database,
            self.instance_id,
            services,
            Journal(database, emitter, self.instance_id),
            self,
        )
        self._runtime.start()
        self._identities = Batcher("identity", self._load_identities)
        self._identities.start()
        if database.dialect == "postgresql":
            self._listener = MentionListener(
                self.settings.database_url, self.wake, on_reconnect=self._wake_due
            )
            await self._listener.start()
        self.sweeps.start()
        self._running = True
        if self.settings.daemon_verbose:
            logging.getLogger("neolith_orchestrator.daemons").setLevel(logging.DEBUG)
        _log.info("daemon manager started (instance %s)", self.instance_id)

    async def shutdown(self) -> None:
        """Stop every daemon gracefully (unfinished jobs return to the queue), then the sweeps,
        pending restarts and the journal."""
        if not self._running:
            return
        # The heartbeat goes on renewing our leases while replies under way finish: none
        # is taken over (and answered twice) before its daemon has stopped.
        await self.sweeps.aclose(("health", "orphans"))
        recoveries = list(self._recoveries.values())
        for task in recoveries:
            task.cancel()
        await asyncio.gather(*recoveries, return_exceptions=True)
        assert self._runtime is not None
        self._runtime.handing_over = True
        await self.stop_all_daemons()
        await self.sweeps.aclose()
        await self._hand_over()
        if self._listener is not None:
            await self._listener.aclose()
            self._listener = None
        assert self._runtime is not None
        if self._identities is not None:
            await self._identities.aclose()
            self._identities = None
        await self._runtime.aclose()
        self._running = False

    async def _hand_over(self) -> None:
        """Expire this instance's leases now that its daemons stopped and their jobs went
        back to the queue: the other instances' orphan scan takes them over at once."""

        async def expire(session: AsyncSession) -> int:
            return await store.expire_leases(session, self.instance_id)

        try:
            handed = await self.database.run(expire, name="hand-over")
        except Unavailable:
            return  # the leases expire on their own; the next owner answers the jobs
        if handed:
            _log.info("handed %d daemon(s) over to the other instances", handed)

    @property
    def running(self) -> bool:
        return self._running

    @property
    def database(self) -> Database:
        if self._database is None:
            raise DaemonError("the daemon manager has not been started")
        return self._database

    @property
    def runtime(self) -> DaemonRuntime:
        if self._runtime is None or not self._running:
            raise DaemonError("the daemon manager is not running")
        return self._runtime

    # -- lifecycle API ----------------------------------------------------------------
    async def create_daemon(self, orchestrator: OrchestratorRef) -> OrchestratorDaemon:
        """The orchestrator's daemon, registered with this manager but not started."""
        runtime = self.runtime
        identity = await self._identity(orchestrator)
        daemon = self._daemons.get(identity.orchestrator_id)
        if daemon is None:
            daemon = OrchestratorDaemon(identity, runtime)
            self._daemons[identity.orchestrator_id] = daemon
            self._by_user[identity.user_id] = identity.orchestrator_id
        return daemon

    async def start_daemon(self, orchestrator: OrchestratorRef) -> OrchestratorDaemon:
        """Start (or return the already running) daemon of an orchestrator; `LeaseHeld`
        (naming the owner) when another live instance runs it."""
        daemon = await self.create_daemon(orchestrator)
        try:
            return await self._start(daemon)
        except LeaseHeld:
            raise await self._elsewhere(daemon) from None

    async def _start(self, daemon: OrchestratorDaemon) -> OrchestratorDaemon:
        """Start it; a refused lease drops it here and raises `LeaseHeld` (without asking
        whose it is: a restore or a takeover meets thousands of these at once)."""
        if daemon.status is DaemonStatus.ERROR:
            self._forgive(daemon)  # an explicit start is an admin's decision to try again
        try:
            await daemon.start()
        except LeaseHeld:
            self._drop(daemon)
            raise
        return daemon

    async def stop_daemon(self, orchestrator_id: uuid.UUID | str) -> bool:
        """Stop a daemon gracefully. False when none was running."""
        oid = _as_uuid(orchestrator_id)
        daemon = self._daemons.get(oid)
        if daemon is None:
            return False
        self._cancel_recovery(oid)
        await daemon.stop()
        if self._daemons.get(oid) is daemon:
            del self._daemons[oid]
            self._by_user.pop(daemon.user_id, None)
        return True

    async def restart_daemon(self, orchestrator_id: uuid.UUID | str) -> OrchestratorDaemon:
        """Stop and start again; resets the restart count (an admin's fresh start)."""
        oid = _as_uuid(orchestrator_id)
        daemon = self._daemons.get(oid)
        if daemon is not None:
            self._cancel_recovery(oid)
            await daemon.stop()
            self._forgive(daemon)
            daemon.identity = await self._identity(oid)
            try:
                await daemon.start()
            except LeaseHeld:
                raise await self._elsewhere(daemon) from None
        else:
            daemon = await self.start_daemon(oid)
        self.metrics.restarts.inc()
        await self._announce(daemon, "daemon:restarted", {"by": "admin"})
        return daemon

    async def refresh_identity(self, orchestrator_id: uuid.UUID | str) -> None:
        """Re-read a running daemon's name, handle and charter (after an admin edits them):
        its next reply uses them."""
        daemon = self._daemons.get(_as_uuid(orchestrator_id))
        if daemon is not None:
            daemon.identity = await self._identity(daemon.orchestrator_id)

    async def stop_all_daemons(self) -> None:
        daemons = list(self._daemons)
        await asyncio.gather(*(self.stop_daemon(oid) for oid in daemons))

    async def pause_daemon(self, orchestrator_id: uuid.UUID | str) -> None:
        await self._require(orchestrator_id).pause()

    async def resume_daemon(self, orchestrator_id: uuid.UUID | str) -> None:
        await self._require(orchestrator_id).resume()

    async def on_user_login(self, user: User | Orchestrator) -> OrchestratorDaemon | None:
        """Start the daemon of an orchestrator user when DAEMON_AUTO_START is on."""
        if isinstance(user, User) and not user.is_orchestrator:
            return None
        if not self.settings.daemon_auto_start:
            return None
        try:
            return await self._start(await self.create_daemon(user))
        except LeaseHeld:
            _log.info("not starting the daemon of %s here: another instance runs it", user.id)
            return None

    async def take_over(self, orchestrator_ids: list[uuid.UUID]) -> int:
        """Start the daemons of orphaned orchestrators (their owner died or handed them
        over): all at once, so their leases are taken in one statement. Another instance
        may win one; that one is simply not ours. Returns how many we took."""
        wanted = [oid for oid in orchestrator_ids if oid not in self._daemons]

        async def start(oid: uuid.UUID) -> OrchestratorDaemon:
            return await self._start(await self.create_daemon(oid))

        results = await asyncio.gather(*(start(oid) for oid in wanted), return_exceptions=True)
        taken = 0
        for oid, result in zip(wanted, results, strict=True):
            if isinstance(result, OrchestratorDaemon):
                taken += 1
                self._log_event(result, "daemon:taken-over", {"orchestrator_id": str(oid)})
                if self.on_takeover is not None:
                    self.on_takeover(result.user_id)
            elif not isinstance(result, LeaseHeld | NotFound):
                _log.warning("taking over %s failed: %s", oid, result)
        return taken

    async def on_user_logout(self, user_id: uuid.UUID | str) -> bool:
        """Stop the daemon of this *user* (not orchestrator) id, if it runs one."""
        oid = self._by_user.get(_as_uuid(user_id))
        return False if oid is None else await self.stop_daemon(oid)

    def wake(self, orchestrator_ids: Any) -> None:
        """New jobs were committed for these orchestrators (the in-process signal)."""
        for oid in orchestrator_ids:
            daemon = self._daemons.get(oid)
            if daemon is not None:
                daemon.wake()

    async def _wake_due(self) -> None:
        """Wake every daemon with due work (wake-ups sent while LISTEN was down are lost)."""
        self.wake(await self.database.run(jobs.due_orchestrators, name="due"))

    # -- queries ----------------------------------------------------------------------
    def get_daemon(self, orchestrator_id: uuid.UUID | str) -> OrchestratorDaemon | None:
        return self._daemons.get(_as_uuid(orchestrator_id))

    def daemons(self) -> list[OrchestratorDaemon]:
        return list(self._daemons.values())

    def is_daemon_running(self, orchestrator_id: uuid.UUID | str) -> bool:
        daemon = self.get_daemon(orchestrator_id)
        return daemon is not None and daemon.is_running()

    def get_running_daemons(self) -> list[OrchestratorDaemon]:
        return [d for d in self._daemons.values() if d.is_running()]

    def get_daemon_status(self, orchestrator_id: uuid.UUID | str) -> dict[str, Any] | None:
        daemon = self.get_daemon(orchestrator_id)
        return None if daemon is None else daemon.snapshot()

    def get_all_daemon_statuses(self) -> list[dict[str, Any]]:
        return [d.snapshot() for d in self._daemons.values()]

    def _count_by_status(self) -> dict[str, int]:
        counts = Counter(d.status.value for d in self._daemons.values())
        return {s.value: counts.get(s.value, 0) for s in DaemonStatus}

    async def organization_statuses(self, org_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every orchestrator of one organization, with or without a daemon."""
        async with self.database.transaction() as session:
            rows = await list_orchestrators(session, org_id)
            waiting = await jobs.pending_counts(session, [o.id for o, _ in rows])
        return [self._status_of(o, u, waiting.get(o.id, 0)) for o, u in rows]

    async def orchestrator_status(
        self, org_id: uuid.UUID, orchestrator_id: uuid.UUID
    ) -> dict[str, Any]:
        async with self.database.transaction() as session:
            orchestrator, user = await get_orchestrator(session, org_id, orchestrator_id)
            waiting = await jobs.pending_counts(session, [orchestrator.id])
        return self._status_of(orchestrator, user, waiting.get(orchestrator.id, 0))

    def _status_of(self, orchestrator: Orchestrator, user: User, waiting: int) -> dict[str, Any]:
        daemon = self._daemons.get(orchestrator.id)
        owner = orchestrator.lease_owner
        if daemon is not None:
            status = daemon.snapshot()
            status["instance_id"] = self.instance_id
        elif (
            owner is not None
            and owner != self.instance_id
            and orchestrator.lease_expires_at is not None
            and orchestrator.lease_expires_at > utcnow()
        ):
            status = self._status_elsewhere(orchestrator, user, owner, waiting)
        else:
            status = {
                "orchestrator_id": str(orchestrator.id),
                "user_id": str(user.id),
                "organization_id": str(orchestrator.organization_id),
                "name": user.name,
                "handle": user.handle,
                "status": DaemonStatus.STOPPED.value,
                "presence": orchestrator.status,
                "health": None,
                "restart_count": 0,
                "last_error": orchestrator.status_reason,
                "queue_depth": waiting,
                "uptime_ms": 0,
                "gave_up": False,
                "running": False,
                "instance_id": None,
            }
            if waiting:
                status["note"] = f"logged out: {waiting} mention(s) wait for it to log in"
        status["pending_mentions"] = waiting
        status["status_message"] = orchestrator.status_message
        status["role"] = orchestrator.role
        status["discipline"] = orchestrator.discipline
        status.update(model_choice(user.orchestrator_config, self.settings))
        return status

    def _status_elsewhere(
        self, orchestrator: Orchestrator, user: User, owner: str, waiting: int
    ) -> dict[str, Any]:
        """A daemon another live instance runs, as its row tells (only the owner writes it)."""
        if orchestrator.status == OrchestratorStatus.ERROR.value:
            state = DaemonStatus.ERROR
        elif orchestrator.status_reason == waiting_notes.PAUSED:
            state = DaemonStatus.PAUSED
        else:
            state = DaemonStatus.RUNNING
        return {
            "orchestrator_id": str(orchestrator.id),
            "user_id": str(user.id),
            "organization_id": str(orchestrator.organization_id),
            "name": user.name,
            "handle": user.handle,
            "status": state.value,
            "presence": orchestrator.status,
            "health": None,
            "restart_count": 0,
            "last_error": orchestrator.status_reason if state is DaemonStatus.ERROR else None,
            "queue_depth": waiting,
            "uptime_ms": 0,
            "gave_up": False,
            "running": state is not DaemonStatus.ERROR,
            "instance_id": owner,
            "note": f"running on {owner}",
        }

    def runtime_status(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "running": self._running,
            "daemons": {"total": len(self._daemons), "by_status": self._count_by_status()},
            "sweeps": {
                "heartbeat": self.sweeps.last("heartbeat"),
                "health": self.sweeps.last("health"),
                "orphans": self.sweeps.last("orphans"),
            },
            "model": describe_generator(self.generator) if self.generator else None,
            "settings": {
                "heartbeat_interval_ms": self.settings.daemon_heartbeat_interval,
                "health_check_interval_ms": self.settings.daemon_health_check_interval,
                "lease_ttl_ms": self.settings.lease_ttl_ms,
                "orphan_scan_interval_ms": self.settings.daemon_orphan_scan_interval,
                "auto_restart": self.settings.daemon_auto_restart,
                "max_restart_attempts": self.settings.daemon_max_restart_attempts,
                "max_concurrent_conversations": self.settings.daemon_max_concurrent_conversations,
            },
        }

    # -- supervision --------------------------------------------------------------------
    def crashed(self, daemon: OrchestratorDaemon, exc: BaseException) -> None:
        """A worker ended with an error: recover in an owned, named task, at once. (A
        database outage ends a worker too, but is not counted as a crash.)"""
        if not isinstance(exc, Unavailable):
            self.metrics.crashes.inc()
        oid = daemon.orchestrator_id
        if oid in self._recoveries or not self._running:
            return
        task = asyncio.create_task(self._recover(daemon, exc), name=f"recover:{oid}")
        self._recoveries[oid] = task
        task.add_done_callback(
            lambda t: self._recoveries.pop(oid, None) if self._recoveries.get(oid) is t else None
        )

    async def _recover(self, daemon: OrchestratorDaemon, exc: BaseException | None) -> None:
        if exc is not None:
            left = await daemon.after_crash(exc)
            await self.database.settle()  # the dead worker's last transactions end first

            async def release(session: AsyncSession) -> None:
                await jobs.release(session, left)

            await self._when_reachable(lambda: self.database.run(release, name="release"))
        if daemon.waiting_for_database:
            await self._resume_after_outage(daemon)
            return
        if daemon.permanent_failure or not self.settings.daemon_auto_restart:
            return
        delay = daemon.policy.next_delay(time.monotonic())
        if delay is None:
            await self._give_up(daemon)
            return
        if delay:
            await asyncio.sleep(delay)
        if self._daemons.get(daemon.orchestrator_id) is not daemon:
            return  # stopped meanwhile
        try:
            await daemon.start()
        except Unavailable:
            await self._resume_after_outage(daemon)
            return
        except LeaseHeld:
            self._drop(daemon)  # another instance took it over meanwhile
            return
        except DaemonError as err:
            _log.warning("restart of %s failed: %s", daemon.orchestrator_id, err)
            return
        self.metrics.restarts.inc()
        await self._announce(
            daemon, "daemon:restarted", {"attempt": daemon.policy.restart_count, "delay_s": delay}
        )

    async def _resume_after_outage(self, daemon: OrchestratorDaemon) -> None:
        """Start a daemon that a database outage stopped, once the database answers: as
        often as it takes, and without counting it against the restart policy."""
        started = time.monotonic()
        while self._daemons.get(daemon.orchestrator_id) is daemon:
            await self.database.wait_reachable()
            try:
                await daemon.start()
            except Unavailable:
                continue  # down again: wait_reachable probes with back-off and jitter
            except LeaseHeld:
                self._drop(daemon)  # another instance took it over during the outage
                return
            except DaemonError as err:
                _log.warning("restart of %s failed: %s", daemon.orchestrator_id, err)
                return
            await self._announce(
                daemon,
                "daemon:restarted",
                {"after": "database outage", "waited_s": round(time.monotonic() - started, 3)},
            )
            return

    async def _when_reachable(self, work: Callable[[], Awaitable[None]]) -> None:
        """Do `work`, retrying after each outage until the database takes it."""
        while True:
            try:
                await work()
            except Unavailable:
                await self.database.wait_reachable()
            else:
                return

    async def heal(self, daemon: OrchestratorDaemon, problem: str) -> None:
        """Called by the health sweep for a daemon that is not well."""
        oid = daemon.orchestrator_id
        if oid in self._recoveries or daemon.gave_up or daemon.permanent_failure:
            return
        if problem == "error":
            if not self.settings.daemon_auto_restart and not daemon.waiting_for_database:
                return
            task = asyncio.create_task(self._recover(daemon, None), name=f"recover:{oid}")
        else:
            oplog.daemon_event(daemon.identity, "daemon:unhealthy", {"reason": problem})
            await daemon.record_error(f"health check: {problem}")
            await daemon.stop(grace=0)
            task = asyncio.create_task(self._recover(daemon, None), name=f"recover:{oid}")
        self._recoveries[oid] = task
        task.add_done_callback(
            lambda t: self._recoveries.pop(oid, None) if self._recoveries.get(oid) is t else None
        )

    async def _give_up(self, daemon: OrchestratorDaemon) -> None:
        daemon.gave_up = True
        self.metrics.gave_up.inc()
        limit = self.settings.daemon_max_restart_attempts
        window = self.settings.daemon_restart_window // 1000
        reason = f"gave up after {limit} restarts within {window} s; restart it to try again"
        await daemon.record_error(reason)
        await self.runtime.status_changed(daemon, daemon.status, reason)
        await self._announce(
            daemon, "daemon:gave-up", {"reason": reason, "last_error": daemon.last_error}
        )
        try:  # the mentions waiting for it are told why (later ones are, at post time)
            await tell_waiting(self.runtime.reply_services, daemon.identity, *failing(reason))
        except Exception:  # the database may be what keeps failing
            _log.warning("could not tell the mentions waiting for %s", daemon.orchestrator_id)

    async def _reply_failed(self, identity: Identity, job: MentionJob, reason: str) -> None:
        """A mention ended in a failure notice: log it and tell the organization's admins."""
        payload = {
            "orchestrator_id": str(identity.orchestrator_id),
            "job_id": str(job.id),
            "message_id": str(job.message_id),
            "channel_id": str(job.channel_id),
            "reason": reason,
        }
        oplog.daemon_event(identity, "daemon:reply-failed", payload)
        if self._runtime is not None:
            self._runtime.journal.event(
                identity.organization_id, identity.orchestrator_id, "daemon:reply-failed", payload
            )
        await self.emitter.emit(
            "daemon:event",
            {"type": "daemon:reply-failed", **payload},
            room=admin_room(identity.organization_id),
        )
        await self.listeners.emit("daemon:reply-failed", payload)

    def _drop(self, daemon: OrchestratorDaemon) -> None:
        """Forget a stopped daemon that another instance runs."""
        oid = daemon.orchestrator_id
        if self._daemons.get(oid) is daemon and daemon.status is DaemonStatus.STOPPED:
            del self._daemons[oid]
            self._by_user.pop(daemon.user_id, None)

    async def _elsewhere(self, daemon: OrchestratorDaemon) -> LeaseHeld:
        """The daemon's lease is another instance's (ours is dropped): name the owner."""
        self._drop(daemon)
        oid = daemon.orchestrator_id
        async with self.database.transaction() as session:
            owner = await session.scalar(
                select(Orchestrator.lease_owner).where(Orchestrator.id == oid)
            )
        return LeaseHeld(f"the daemon is running on {owner or 'another instance'}")

    def _forgive(self, daemon: OrchestratorDaemon) -> None:
        daemon.policy.reset()
        daemon.gave_up = False
        daemon.permanent_failure = None

    def _cancel_recovery(self, oid: uuid.UUID) -> None:
        task = self._recoveries.pop(oid, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    # -- events -------------------------------------------------------------------------
    def on(self, event: str, handler: Handler) -> None:
        self.listeners.on(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        self.listeners.off(event, handler)

    def wants(self, event: str) -> bool:
        """Whether a daemon event is logged or has a manager listener."""
        name = _FORWARD.get(event)
        return name is not None and (name in _LOGGED or self.listeners.has(name))

    async def forward(
        self, daemon: OrchestratorDaemon, event: str, payload: dict[str, Any]
    ) -> None:
        name = _FORWARD.get(event)
        if name is None:
            return
        if name in _LOGGED:
            self._log_event(daemon, name, payload)
        await self.listeners.emit(name, payload)

    async def _announce(
        self, daemon: OrchestratorDaemon, name: str, payload: dict[str, Any]
    ) -> None:
        payload = {"orchestrator_id": str(daemon.orchestrator_id), **payload}
        self._log_event(daemon, name, payload)
        await self.listeners.emit(name, payload)

    def _log_event(self, daemon: OrchestratorDaemon, name: str, payload: dict[str, Any]) -> None:
        oplog.daemon_event(daemon.identity, name, payload)
        if self._runtime is not None:
            self._runtime.journal.event(
                daemon.organization_id, daemon.orchestrator_id, name, payload
            )

    # -- helpers ------------------------------------------------------------------------
    def _require(self, orchestrator_id: uuid.UUID | str) -> OrchestratorDaemon:
        daemon = self.get_daemon(orchestrator_id)
        if daemon is None:
            raise DaemonError("the orchestrator's daemon is not running")
        return daemon

    async def _identity(self, ref: OrchestratorRef) -> Identity:
        if isinstance(ref, User):
            key = (True, ref.id)
        elif isinstance(ref, Orchestrator):
            key = (False, ref.id)
        else:
            key = (False, _as_uuid(ref))
        if self._identities is None:
            raise DaemonError("the daemon manager is not running")
        identity = await self._identities.submit(key)
        if identity is None:
            raise NotFound("orchestrator not found")
        return identity

    async def _load_identities(
        self, keys: list[_IdentityKey]
    ) -> dict[_IdentityKey, Identity | None]:
        by_user = [value for is_user, value in keys if is_user]
        by_id = [value for is_user, value in keys if not is_user]
        wanted: list[ColumnElement[bool]] = []
        if by_id:
            wanted.append(Orchestrator.id.in_(by_id))
        if by_user:
            wanted.append(Orchestrator.user_id.in_(by_user))
        stmt = (
            select(
                Orchestrator.id,
                Orchestrator.organization_id,
                User.id,
                User.name,
                User.handle,
                User.orchestrator_config,
            )
            .join(User, User.id == Orchestrator.user_id)
            .where(or_(*wanted))
        )
        found: dict[_IdentityKey, Identity] = {}
        organizations: dict[uuid.UUID, uuid.UUID] = {}  # one id object per organization
        async with self.database.transaction() as session:
            rows = (await session.execute(stmt)).all()
        for orchestrator_id, organization_id, user_id, name, handle, config in rows:
            identity = Identity(
                orchestrator_id=orchestrator_id,
                user_id=user_id,
                organization_id=organizations.setdefault(organization_id, organization_id),
                name=name,
                handle=handle,
                charter=dict(config or {"name": name}),
            )
            found[(False, orchestrator_id)] = identity
            found[(True, user_id)] = identity
        return {key: found.get(key) for key in keys}


def _as_uuid(value: uuid.UUID | str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise NotFound("orchestrator not found") from exc


_manager: DaemonManager | None = None


def get_daemon_manager(settings: Settings | None = None) -> DaemonManager:
    """The process's one manager, created on first call (settings from the environment
    when none are given)."""
    global _manager
    if _manager is None:
        if settings is None:
            settings = load_settings()
        _manager = DaemonManager(settings)
    return _manager


def reset_daemon_manager() -> None:
    """Forget the singleton (tests). Shut the old one down first."""
    global _manager
    _manager = None


async def create_orchestrator_daemon(
    orchestrator: OrchestratorRef, manager: DaemonManager | None = None
) -> OrchestratorDaemon:
    """Create (not start) the daemon of an orchestrator under the process's manager."""
    return await (manager or get_daemon_manager()).create_daemon(orchestrator)
