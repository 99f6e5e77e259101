"""`OrchestratorDaemon`: one logged-in orchestrator at work.

Its worker claims mention jobs (at most `DAEMON_MAX_CONCURRENT_CONVERSATIONS` at a time,
one per channel so replies follow message order) and answers each in a child task of one
`TaskGroup`. An unexpected error in any child ends the worker: that is a crash, which the
manager's supervisor sees the moment the task completes. Runtime state lives here; what
must survive (jobs, status, leases) lives in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from neolith_orchestrator.chat import jobs
from neolith_orchestrator.daemons import actions
from neolith_orchestrator.daemons.backoff import RestartPolicy
from neolith_orchestrator.daemons.listeners import Handler, Listeners
from neolith_orchestrator.daemons.reply import Identity, Outcome, answer
from neolith_orchestrator.daemons.status import DaemonStatus
from neolith_orchestrator.db.models import MentionJob
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import DaemonError, ModelPermanentError

if TYPE_CHECKING:
    from neolith_orchestrator.daemons.runtime import DaemonRuntime

_ERRORS_KEPT = 10
_log = logging.getLogger(__name__)


class _InFlight:
    __slots__ = ("channel_id", "job_id", "started", "task")

    def __init__(self, job: MentionJob, task: asyncio.Task[None]) -> None:
        self.job_id = job.id
        self.channel_id = job.channel_id
        self.started = time.monotonic()
        self.task = task


class OrchestratorDaemon:
    """Answers the mentions of one orchestrator. Created and supervised by the manager."""

    def __init__(self, identity: Identity, runtime: DaemonRuntime) -> None:
        self.identity = identity
        self._rt = runtime
        self.listeners = Listeners()
        self.status = DaemonStatus.STOPPED
        settings = runtime.settings
        self.policy = RestartPolicy(
            max_attempts=settings.daemon_max_restart_attempts,
            window=settings.daemon_restart_window / 1000,
            initial=settings.daemon_restart_backoff_initial / 1000,
            cap=settings.daemon_restart_backoff_max / 1000,
        )
        self._worker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._stopping = False
        self._inflight: dict[uuid.UUID, _InFlight] = {}
        # Claimed and not yet closed: what a stop or a crash must give back to the queue.
        self._unfinished: set[uuid.UUID] = set()
        self._started_at: float | None = None
        self.last_heartbeat: datetime | None = None
        self.errors: deque[dict[str, Any]] = deque(maxlen=_ERRORS_KEPT)
        self.last_error: str | None = None
        self.total_messages_processed = 0
        self.queue_depth = 0
        self.gave_up = False
        self.permanent_failure: str | None = None

    # -- identity -------------------------------------------------------------------
    @property
    def orchestrator_id(self) -> uuid.UUID:
        return self.identity.orchestrator_id

    @property
    def user_id(self) -> uuid.UUID:
        return self.identity.user_id

    @property
    def organization_id(self) -> uuid.UUID:
        return self.identity.organization_id

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        """Take the orchestrator's lease and start answering. Idempotent."""
        if self.status in (DaemonStatus.RUNNING, DaemonStatus.PAUSED, DaemonStatus.INITIALIZING):
            return
        if self.status is DaemonStatus.STOPPING:
            raise DaemonError("the daemon is stopping; start it again once it has stopped")
        self._stopping = False
        await self._set_status(DaemonStatus.INITIALIZING)
        if not await self._rt.activate(self.orchestrator_id):
            reason = "another instance holds this orchestrator's lease"
            await self.record_error(reason)
            await self._set_status(DaemonStatus.ERROR, reason)
            raise DaemonError(reason)
        self._started_at = time.monotonic()
        self.last_heartbeat = utcnow()
        self._resumed.set()
        self._worker = asyncio.create_task(
            self._run(), name=f"daemon:{self.identity.handle}:{self.orchestrator_id}"
        )
        self._worker.add_done_callback(self._worker_done)
        await self._set_status(DaemonStatus.RUNNING)
        await self._emit("started", {})

    async def stop(self, *, grace: float | None = None) -> None:
        """Stop claiming, let in-flight replies finish for the grace period, then cancel
        them; their jobs go back to pending. Idempotent."""
        if self.status in (DaemonStatus.STOPPED, DaemonStatus.STOPPING):
            return
        self._stopping = True
        await self._set_status(DaemonStatus.STOPPING)
        self._resumed.set()
        grace = self._rt.settings.daemon_stop_grace / 1000 if grace is None else grace
        pending = [f.task for f in self._inflight.values()]
        if pending and grace > 0:
            await asyncio.wait(pending, timeout=grace)
        await self._cancel_worker()
        left = list(self._unfinished)
        await self._rt.deactivate(self.orchestrator_id, left)
        self._inflight.clear()
        self._unfinished.clear()
        self._started_at = None
        await self._set_status(DaemonStatus.STOPPED)
        await self._emit("stopped", {"released_jobs": len(left)})

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def pause(self) -> Awaitable[None]:
        """Stay logged in but take no new mention; replies under way finish."""
        if self.status is not DaemonStatus.RUNNING:
            raise DaemonError(f"cannot pause a daemon that is {self.status.value}")
        self._resumed.clear()
        return self._set_status(DaemonStatus.PAUSED)

    def resume(self) -> Awaitable[None]:
        if self.status is not DaemonStatus.PAUSED:
            raise DaemonError(f"cannot resume a daemon that is {self.status.value}")
        self._resumed.set()
        self._wake.set()
        return self._set_status(DaemonStatus.RUNNING)

    def wake(self) -> None:
        """New work may be waiting: look for it now."""
        self._wake.set()

    async def _cancel_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._stopping or task is not self._worker:
            return
        exc = task.exception()
        if exc is None:
            exc = RuntimeError("the daemon's worker ended unexpectedly")
        self._rt.crashed(self, _unwrap(exc))

    async def after_crash(self, exc: BaseException) -> list[uuid.UUID]:
        """Called by the supervisor: note the error, forget the dead worker's replies."""
        left = list(self._unfinished)
        self._inflight.clear()
        self._unfinished.clear()
        self._worker = None
        self._started_at = None
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ModelPermanentError):
            self.permanent_failure = exc.message
            reason = exc.message
        await self.record_error(reason)
        await self._set_status(DaemonStatus.ERROR, reason)
        await self._emit(
            "error", {"error": reason, "permanent": self.permanent_failure is not None}
        )
        return left

    # -- work -----------------------------------------------------------------------
    async def _run(self) -> None:
        settings = self._rt.settings
        ttl = timedelta(milliseconds=settings.daemon_job_claim_ttl)
        limit = settings.daemon_max_concurrent_conversations
        async with asyncio.TaskGroup() as group:
            while True:
                await self._resumed.wait()
                self._wake.clear()
                next_due: datetime | None = None
                free = limit - len(self._inflight)
                if free > 0 and not self._stopping:
                    busy = {f.channel_id for f in self._inflight.values()}
                    async with self._rt.database.transaction() as session:
                        claimed = await jobs.claim(
                            session,
                            self.orchestrator_id,
                            self._rt.instance_id,
                            limit=free,
                            busy_channels=busy,
                            claim_ttl=ttl,
                        )
                    next_due = claimed.next_due
                    if claimed.jobs:
                        _log.debug("@%s claimed %d job(s)", self.identity.handle, len(claimed.jobs))
                    for job in claimed.jobs:
                        task = group.create_task(self._reply(job), name=f"reply:{job.id}")
                        self._inflight[job.id] = _InFlight(job, task)
                        if len(self._inflight) == 1:
                            self._rt.presence_changed(self)
                        self._unfinished.add(job.id)
                    self.queue_depth = len(claimed.jobs) + (1 if next_due else 0)
                    if claimed.jobs:
                        continue  # more may be due: look again before sleeping
                await self._sleep_until(next_due)

    async def _sleep_until(self, due: datetime | None) -> None:
        if due is None:
            await self._wake.wait()
            return
        delay = max(0.0, (due - utcnow()).total_seconds())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=delay + 0.01)

    async def _reply(self, job: MentionJob) -> None:
        try:
            outcome = await answer(self._rt.reply_services, self.identity, job)
            self._unfinished.discard(job.id)
        finally:
            if self._inflight.pop(job.id, None) is not None and not self._inflight:
                self._rt.presence_changed(self)
            self._wake.set()
        _log.debug("@%s job %s: %s", self.identity.handle, job.id, outcome.value)
        if outcome in (Outcome.REPLIED, Outcome.FAILED):
            self.total_messages_processed += 1
            await self._emit(
                "message:processed",
                {
                    "job_id": str(job.id),
                    "message_id": str(job.message_id),
                    "outcome": outcome.value,
                },
            )

    async def handle_message(self, message_id: uuid.UUID) -> bool:
        """Queue a stored message for this daemon (idempotent). True if a job was added."""
        added = await actions.enqueue_mention(self._rt, self.identity, message_id)
        self.wake()
        return added

    async def send_response(self, message: dict[str, Any]) -> dict[str, Any]:
        """Post `message` ({channel_id, content, reply_to_id?}) as this orchestrator."""
        return await self.execute_action({"type": "send_message", **message})

    async def execute_action(self, action: dict[str, Any]) -> dict[str, Any]:
        """Do one action (send_message, react, update_status, join_channel, leave_channel)
        through the same services and permission checks a person goes through."""
        result = await actions.execute(self._rt, self.identity, action)
        await self._emit("action:execute", {"action": action.get("type"), "result": result})
        if action.get("type") == "send_message":
            await self._emit("message:send", result)
        return result

    # -- status -----------------------------------------------------------------------
    def get_status(self) -> str:
        return self.status.value

    def is_running(self) -> bool:
        return self.status in (DaemonStatus.RUNNING, DaemonStatus.PAUSED)

    @property
    def worker_alive(self) -> bool:
        return self._worker is not None and not self._worker.done()

    @property
    def active_conversations(self) -> int:
        return len(self._inflight)

    @property
    def running_since(self) -> float | None:
        return self._started_at

    def stuck_replies(self, timeout: float) -> list[uuid.UUID]:
        now = time.monotonic()
        return [f.job_id for f in self._inflight.values() if now - f.started > timeout]

    def get_health_status(self) -> dict[str, Any]:
        uptime = (
            0 if self._started_at is None else int((time.monotonic() - self._started_at) * 1000)
        )
        return {
            "status": self.status.value,
            "uptime_ms": uptime,
            "active_conversations": len(self._inflight),
            "queue_depth": self.queue_depth,
            "total_messages_processed": self.total_messages_processed,
            "last_heartbeat": self.last_heartbeat.isoformat() if self.last_heartbeat else None,
            "errors": list(self.errors),
            "restart_count": self.policy.restart_count,
        }

    def snapshot(self) -> dict[str, Any]:
        """The daemon-status shape of DESIGN.md."""
        ident = self.identity
        health = self.get_health_status()
        return {
            "orchestrator_id": str(ident.orchestrator_id),
            "user_id": str(ident.user_id),
            "organization_id": str(ident.organization_id),
            "name": ident.name,
            "handle": ident.handle,
            "status": self.status.value,
            "presence": self._rt.presence(self),
            "health": health,
            "restart_count": self.policy.restart_count,
            "last_error": self.last_error,
            "queue_depth": self.queue_depth,
            "uptime_ms": health["uptime_ms"],
            "gave_up": self.gave_up,
            "running": self.is_running(),
        }

    async def record_error(self, reason: str) -> None:
        self.last_error = reason
        self.errors.append({"at": utcnow().isoformat(), "error": reason})

    async def _set_status(self, status: DaemonStatus, reason: str | None = None) -> None:
        if status is self.status:
            return
        previous, self.status = self.status, status
        await self._rt.status_changed(self, previous, reason)
        await self._emit(
            "status:changed", {"from": previous.value, "to": status.value, "reason": reason}
        )

    async def _emit(self, event: str, payload: dict[str, Any]) -> None:
        payload = {"orchestrator_id": str(self.orchestrator_id), **payload}
        await self.listeners.emit(event, payload)
        await self._rt.forward(self, event, payload)

    # -- listeners --------------------------------------------------------------------
    def on(self, event: str, handler: Handler) -> None:
        self.listeners.on(event, handler)

    def off(self, event: str, handler: Handler) -> None:
        self.listeners.off(event, handler)


def _unwrap(exc: BaseException) -> BaseException:
    """A TaskGroup reports a child's failure as a group: find the cause that matters."""
    while isinstance(exc, BaseExceptionGroup):
        permanent = exc.subgroup(ModelPermanentError)
        exc = (permanent or exc).exceptions[0]
    return exc
