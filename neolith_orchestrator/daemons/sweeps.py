"""The three timers of the manager, one each for all daemons (never one per daemon).

Heartbeat: renew all of this instance's leases in one statement, and wake daemons that
have due jobs (a missed wake-up, a deferred job now due). Health: find daemons in error,
with a dead worker, a stale heartbeat or a reply stuck past its timeout, and restart them
(under the restart policy, unless a database outage stopped them). The heartbeat it checks
is stamped by each daemon's own worker as it loops (never by a sweep), so a stale one means
that worker hangs. Each sweep records its telemetry; a failing daemon never breaks a sweep,
and a database outage is logged once by the database layer, not by every sweep.

Orphans: one query for the logged-in orchestrators whose lease expired (their instance
died, or stopped and handed them over) and the manager takes them over; when several
instances scan at once, the conditional UPDATE that takes a lease lets exactly one win.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.chat import jobs
from neolith_orchestrator.daemons import store
from neolith_orchestrator.daemons.status import DaemonStatus
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import Unavailable

if TYPE_CHECKING:
    from neolith_orchestrator.daemons.manager import DaemonManager

_log = logging.getLogger(__name__)
_ids = itertools.count(1)
_LIVE = (DaemonStatus.RUNNING, DaemonStatus.PAUSED)


@dataclass
class SweepReport:
    kind: str
    id: int = field(default_factory=lambda: next(_ids))
    started_at: str = ""
    finished_at: str = ""
    duration_ms: float = 0.0
    daemons: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Sweeps:
    def __init__(self, manager: DaemonManager) -> None:
        self._manager = manager
        settings = manager.settings
        self.heartbeat_interval = settings.daemon_heartbeat_interval / 1000
        self.health_interval = settings.daemon_health_check_interval / 1000
        stale = settings.daemon_heartbeat_stale_after or 3 * settings.daemon_heartbeat_interval
        self.stale_after = stale / 1000
        self.reply_timeout = settings.daemon_reply_timeout / 1000
        self.orphan_interval = settings.daemon_orphan_scan_interval / 1000
        self.history: dict[str, deque[SweepReport]] = {
            "heartbeat": deque(maxlen=10),
            "health": deque(maxlen=10),
            "orphans": deque(maxlen=10),
        }
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        loops = {
            "heartbeat": (self.heartbeat_interval, self.heartbeat),
            "health": (self.health_interval, self.health),
            "orphans": (self.orphan_interval, self.orphans),
        }
        self._tasks = {
            kind: asyncio.create_task(self._loop(interval, sweep), name=f"sweep:{kind}")
            for kind, (interval, sweep) in loops.items()
        }

    async def aclose(self, kinds: tuple[str, ...] | None = None) -> None:
        """Stop the sweeps named (all by default)."""
        stopping = [self._tasks.pop(k) for k in list(self._tasks) if kinds is None or k in kinds]
        for task in stopping:
            task.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)

    async def _loop(self, interval: float, sweep: Callable[[], Awaitable[SweepReport]]) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await sweep()
            except Unavailable:
                pass  # the outage is logged where it is detected, once
            except Exception:  # a sweep must outlive any one failure
                _log.exception("sweep failed")

    def last(self, kind: str) -> dict[str, Any] | None:
        history = self.history[kind]
        return history[-1].as_dict() if history else None

    def _begin(self, kind: str) -> tuple[SweepReport, float]:
        return SweepReport(kind=kind, started_at=utcnow().isoformat()), time.perf_counter()

    def _end(self, report: SweepReport, t0: float) -> SweepReport:
        report.duration_ms = round((time.perf_counter() - t0) * 1000, 3)
        report.finished_at = utcnow().isoformat()
        self.history[report.kind].append(report)
        return report

    async def heartbeat(self) -> SweepReport:
        report, t0 = self._begin("heartbeat")
        manager = self._manager
        report.daemons = sum(1 for d in manager.daemons() if d.status in _LIVE and d.worker_alive)
        try:
            ttl = manager.runtime.lease_ttl

            async def beat(session: AsyncSession) -> tuple[int, set[uuid.UUID]]:
                renewed = await store.renew_leases(session, manager.instance_id, ttl)
                return renewed, await jobs.due_orchestrators(session)

            renewed, due = await manager.database.run(beat, name="heartbeat")
            report.actions["leases_renewed"] = renewed
            woken = 0
            for oid in due:
                found = manager.get_daemon(oid)
                if found is not None and found.is_running():
                    found.wake()
                    woken += 1
            report.actions["woken"] = woken
        except Exception as exc:
            report.errors.append(f"heartbeat write: {exc}")
        return self._end(report, t0)

    async def orphans(self) -> SweepReport:
        report, t0 = self._begin("orphans")
        manager = self._manager
        try:
            found = await manager.database.run(store.orphans, name="orphans")
            report.daemons = len(found)
            if found:
                report.actions["taken_over"] = await manager.take_over(found)
        except Exception as exc:
            report.errors.append(f"orphan scan: {exc}")
        return self._end(report, t0)

    async def health(self) -> SweepReport:
        report, t0 = self._begin("health")
        manager = self._manager
        now = time.monotonic()
        stale_before = utcnow() - timedelta(seconds=self.stale_after)
        counts: dict[str, int] = {}
        daemons = manager.daemons()
        report.daemons = len(daemons)
        for daemon in daemons:
            try:
                problem = self._diagnose(daemon, stale_before)
                if problem is not None:
                    counts[problem] = counts.get(problem, 0) + 1
                    await manager.heal(daemon, problem)
                elif daemon.policy.restart_count and daemon.running_since is not None:
                    # (only a policy with restarts to forget has anything to do here)
                    daemon.policy.healthy_since(daemon.running_since, now)
            except Exception as exc:
                report.errors.append(f"{daemon.orchestrator_id}: {exc}")
        report.actions = counts
        self._end(report, t0)
        await manager.listeners.emit("daemon:health", report.as_dict())
        return report

    def _diagnose(self, daemon: Any, stale_before: datetime) -> str | None:
        status = daemon.status
        if status is DaemonStatus.ERROR:
            return "error"
        if status not in _LIVE:
            return None
        if not daemon.worker_alive:
            return "dead-worker"
        beat = daemon.last_heartbeat
        if beat is not None and beat < stale_before:
            return "stale-heartbeat"
        if daemon.active_conversations and daemon.stuck_replies(self.reply_timeout):
            return "stuck-reply"
        return None
