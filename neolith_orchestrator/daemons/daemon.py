"""`OrchestratorDaemon`: one logged-in orchestrator at work.

Its worker claims mention jobs (at most `DAEMON_MAX_CONCURRENT_CONVERSATIONS` at a time,
one per channel so replies follow message order) and answers each in a child task of one
`TaskGroup`. An unexpected error in any child ends the worker: that is a crash, which the
manager's supervisor sees the moment the task completes. A database outage ends it the same
way (`errors.Unavailable`), but the supervisor treats that as waiting, not as a crash.
The worker stamps `last_heartbeat` itself, each time it wakes and at least once per
heartbeat interval while it sleeps: a worker that hangs stops stamping, and the health
sweep sees it. Runtime state lives here; what must survive (jobs, status, leases) lives in
the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from neolith_orchestrator.chat import jobs, waiting
from neolith_orchestrator.daemons import actions
from neolith_orchestrator.daemons.backoff import RestartPolicy
from neolith_orchestrator.daemons.listeners import Handler, Listeners
from neolith_orchestrator.daemons.reply import (
    Identity,
    Outcome,
    answer,
    failed_attempt,
    is_environmental,
    refuse,
    tell_waiting,
)
from neolith_orchestrator.daemons.signal import Signal
from neolith_orchestrator.daemons.status import Activation, DaemonStatus
from neolith_orchestrator.db.models import MentionJob
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import (
    DaemonError,
    LeaseHeld,
    ModelPermanentError,
    Unavailable,
)

if TYPE_CHECKING:
    from neolith_orchestrator.daemons.runtime import DaemonRuntime

_ERRORS_KEPT = 10
_log = logging.getLogger(__name__)
# Outcomes after which the job is closed (or another owner closed it).
_SETTLED = frozenset({Outcome.REPLIED, Outcome.FAILED, Outcome.DUPLICATE})


class _InFlight:
    __slots__ = ("channel_id", "job_id", "started", "task")

    def __init__(self, job: MentionJob, task: asyncio.Task[None]) -> None:
        self.job_id = job.id
        self.channel_id = job.channel_id
        self.started = time.monotonic()
        self.task = task


class OrchestratorDaemon:
    """Answers the mentions of one orchestrator. Created and supervised by the manager."""

    # Slots: a process may run ten thousand of these, mostly idle.
    __slots__ = (
        "__weakref__",
        "_claiming",
        "_inflight",
        "_left_behind",
        "_resumed",
        "_rt",
        "_started_at",
        "_stopping",
        "_unfinished",
        "_wake",
        "_worker",
        "errors",
        "gave_up",
        "identity",
        "last_error",
        "last_heartbeat",
        "listeners",
        "permanent_failure",
        "policy",
        "queue_depth",
        "status",
        "total_messages_processed",
        "waiting_for_database",
    )

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
        self._wake = Signal()
        # Only while paused: the worker waits for it to be set. Ten thousand idle daemons
        # need no second Event each.
        self._resumed: Signal | None = None
        self._stopping = False
        # Pending jobs the last claim saw but left (a busy channel, no free slot): a
        # finished reply must look again. So must one that ends while a claim runs (that
        # claim saw its channel busy).
        self._left_behind = False
        self._claiming = False
        self._inflight: dict[uuid.UUID, _InFlight] = {}
        # Claimed and not yet closed: what a stop or a crash must give back to the queue
        # (a dict as an ordered set: an empty one is a quarter of an empty set).
        self._unfinished: dict[uuid.UUID, None] = {}
        self._started_at: float | None = None
        self.last_heartbeat: datetime | None = None
        # The last _ERRORS_KEPT errors; an empty tuple until the first (most daemons have
        # none, and every list is one more object for the garbage collector to visit).
        self.errors: Sequence[dict[str, Any]] = ()
        self.last_error: str | None = None
        self.total_messages_processed = 0
        self.queue_depth = 0
        self.gave_up = False
        self.permanent_failure: str | None = None
        # Stopped by a database outage: the supervisor restarts it when the database is
        # back, and the restart policy does not count it as a crash.
        self.waiting_for_database = False

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
        try:
            activation = await self._rt.activate(self.orchestrator_id)
        except Unavailable as exc:
            # Never left INITIALIZING: the supervisor (or the health sweep) tries again.
            self.waiting_for_database = True
            await self.record_error(exc.message)
            await self._set_status(DaemonStatus.ERROR, exc.message)
            raise
        self.waiting_for_database = False
        if activation is Activation.REFUSED:
            # Another live instance runs it: not an error, and not ours to report (the
            # status write is skipped on a row another instance holds).
            await self._set_status(DaemonStatus.STOPPED)
            raise LeaseHeld("another instance runs this orchestrator's daemon")
        self._started_at = time.monotonic()
        self.last_heartbeat = utcnow()
        self._unpause()
        self._worker = asyncio.create_task(
            self._run(claim_first=activation is Activation.WORK),
            name=f"daemon:{self.identity.handle}:{self.orchestrator_id}",
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
        self._unpause()
        grace = self._rt.settings.daemon_stop_grace / 1000 if grace is None else grace
        pending = [f.task for f in self._inflight.values()]
        if pending and grace > 0:
            await asyncio.wait(pending, timeout=grace)
        await self._cancel_worker()
        await self._rt.database.settle()  # a cancelled reply's last transaction ends first
        left = list(self._unfinished)
        # During an outage it stops all the same: the lease expires and the claims run out
        # on their own, then the next owner answers those jobs (the outage is logged once).
        with contextlib.suppress(Unavailable):
            await self._rt.deactivate(self.orchestrator_id, left)
        self._inflight.clear()
        self._unfinished.clear()
        self._left_behind = False
        self._started_at = None
        await self._set_status(DaemonStatus.STOPPED)
        await self._emit("stopped", {"released_jobs": len(left)})

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def pause(self) -> None:
        """Stay logged in but take no new mention; replies under way finish."""
        if self.status is not DaemonStatus.RUNNING:
            raise DaemonError(f"cannot pause a daemon that is {self.status.value}")
        if self._resumed is None:
            self._resumed = Signal()
        # The reason reaches the orchestrator's row: a mention posted meanwhile, from any
        # instance, is told that it waits for a resume (chat/waiting.py); those waiting
        # already are told now.
        await self._set_status(DaemonStatus.PAUSED, waiting.PAUSED)
        await tell_waiting(
            self._rt.reply_services, self.identity, *waiting.PAUSED_NOTICE, claimed_too=False
        )

    def resume(self) -> Awaitable[None]:
        if self.status is not DaemonStatus.PAUSED:
            raise DaemonError(f"cannot resume a daemon that is {self.status.value}")
        self._unpause()
        self._wake.set()
        return self._set_status(DaemonStatus.RUNNING)

    def wake(self) -> None:
        """New work may be waiting: look for it now."""
        self._wake.set()

    def _unpause(self) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is not None:
            resumed.set()

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
        if isinstance(exc, Unavailable):
            self.waiting_for_database = True
            reason = exc.message
        elif isinstance(exc, ModelPermanentError):
            self.permanent_failure = exc.message
            reason = exc.message
        await self.record_error(reason)
        await self._set_status(DaemonStatus.ERROR, reason)
        await self._emit(
            "error",
            {
                "error": reason,
                "permanent": self.permanent_failure is not None,
                "outage": self.waiting_for_database,
            },
        )
        return left

    # -- work -----------------------------------------------------------------------
    async def _run(self, claim_first: bool = True) -> None:
        limit = self._rt.settings.daemon_max_concurrent_conversations
        if not claim_first:
            # Activation found no mention waiting (an empty claim would only set this);
            # an idle daemon needs no task group until its first mention.
            self.queue_depth = 0
            await self._wait(self._wake)
        async with asyncio.TaskGroup() as group:
            while True:
                resumed = self._resumed
                if resumed is not None:
                    await self._wait(resumed)
                await self._beat()
                self._wake.clear()
                next_due: datetime | None = None
                free = limit - len(self._inflight)
                if free > 0 and not self._stopping:
                    claimed = await self._claim(free)
                    next_due = claimed.next_due
                    if claimed.jobs:
                        _log.debug("@%s claimed %d job(s)", self.identity.handle, len(claimed.jobs))
                    work = [(job, None) for job in claimed.jobs] + list(claimed.refused)
                    for job, refusal in work:
                        task = group.create_task(self._reply(job, refusal), name=f"reply:{job.id}")
                        self._inflight[job.id] = _InFlight(job, task)
                        if len(self._inflight) == 1:
                            self._rt.presence_changed(self)
                        self._unfinished[job.id] = None
                    self.queue_depth = len(work) + (1 if next_due else 0)
                    self._left_behind = claimed.left_behind
                    if work and not claimed.complete:
                        continue  # more may be due: look again before sleeping
                    if work and len(self._inflight) < limit:
                        # The scan looked at every pending job: claiming again now would
                        # find nothing new (a new job sets the wake-up, which we keep),
                        # so report what that claim would have.
                        self.queue_depth = 1 if next_due else 0
                    elif work:
                        next_due = None  # no free slot: a finished reply wakes us
                else:
                    self._left_behind = True  # woken with no free slot: look again later
                await self._sleep_until(next_due)

    async def _claim(self, free: int) -> jobs.Claimed:
        """One claim transaction (its own frame, so nothing of it stays with a sleeping
        worker)."""
        busy = {f.channel_id for f in self._inflight.values()}
        settings = self._rt.settings
        self._claiming = True
        try:
            return await self._rt.database.run(
                lambda session: jobs.claim(
                    session,
                    self.orchestrator_id,
                    self._rt.instance_id,
                    member_id=self.user_id,
                    limit=free,
                    busy_channels=busy,
                    claim_ttl=timedelta(milliseconds=settings.daemon_job_claim_ttl),
                    max_attempts=settings.daemon_job_max_attempts,
                ),
                name="claim",
            )
        finally:
            self._claiming = False

    async def _sleep_until(self, due: datetime | None) -> None:
        await self._wait(self._wake, due)

    async def _wait(self, event: Signal, due: datetime | None = None) -> None:
        """Wait for `event` (or until `due`), stamping the heartbeat at least once per
        heartbeat interval: a sleeping worker is alive, a hung one stops stamping."""
        interval = self._rt.settings.daemon_heartbeat_interval / 1000
        while not event.is_set():
            timeout = interval
            if due is not None:
                left = (due - utcnow()).total_seconds() + 0.01
                if left <= 0:
                    return
                timeout = min(timeout, left)
            await event.wait(timeout)
            await self._beat()

    async def _beat(self) -> None:
        self.last_heartbeat = now = utcnow()
        if self.listeners.has("heartbeat"):
            await self.listeners.emit(
                "heartbeat", {"orchestrator_id": str(self.orchestrator_id), "at": now.isoformat()}
            )

    async def _reply(self, job: MentionJob, refusal: str | None = None) -> None:
        """Answer (or, refused by the queue, close) one job. Its failure is its own: it is
        retried or closed by `failed_attempt` while the other channels go on. Only a
        permanent model failure or a failing database ends the worker."""
        services = self._rt.reply_services
        outcome: Outcome | None = None
        try:
            try:
                if refusal is not None:
                    outcome = await refuse(services, self.identity, job, refusal)
                else:
                    outcome = await answer(services, self.identity, job)
            except ModelPermanentError:
                raise
            except Exception as exc:
                if is_environmental(exc):
                    raise
                _log.warning("@%s job %s failed", self.identity.handle, job.id, exc_info=exc)
                await self.record_error(
                    f"reply to {job.message_id} failed: {type(exc).__name__}: {exc}"
                )
                outcome = await failed_attempt(services, self.identity, job, exc)
            self._unfinished.pop(job.id, None)
        finally:
            if self._inflight.pop(job.id, None) is not None and not self._inflight:
                self._rt.presence_changed(self)
            # Look again when the last claim left jobs behind, or this one went back to
            # the queue (deferred); otherwise nothing new can be claimable.
            if self._left_behind or self._claiming or outcome not in _SETTLED:
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
        entry = {"at": utcnow().isoformat(), "error": reason}
        self.errors = [*self.errors[1 - _ERRORS_KEPT :], entry]

    async def _set_status(self, status: DaemonStatus, reason: str | None = None) -> None:
        if status is self.status:
            return
        previous, self.status = self.status, status
        await self._rt.status_changed(self, previous, reason)
        await self._emit(
            "status:changed", {"from": previous.value, "to": status.value, "reason": reason}
        )

    async def _emit(self, event: str, payload: dict[str, Any]) -> None:
        if not (self.listeners.has(event) or self._rt.wants(event)):
            return  # nobody listens and nothing is logged: build no payload
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
