"""Daemon states and how each shows on the orchestrator row and in presence."""

from __future__ import annotations

from enum import StrEnum

from neolith_orchestrator.db.models import OrchestratorStatus


class Activation(StrEnum):
    """What taking a daemon's lease found."""

    REFUSED = "refused"  # another instance holds the lease
    IDLE = "idle"  # ours; no mention is waiting, so the worker sleeps until woken
    WORK = "work"  # ours; mentions are waiting, so the worker claims at once


class DaemonStatus(StrEnum):
    STOPPED = "stopped"
    INITIALIZING = "initializing"
    RUNNING = "running"
    PAUSED = "paused"
    ERROR = "error"
    STOPPING = "stopping"


def row_status(status: DaemonStatus, busy: bool = False) -> OrchestratorStatus:
    """The orchestrator row's status for a daemon state."""
    if status is DaemonStatus.ERROR:
        return OrchestratorStatus.ERROR
    if status in (DaemonStatus.STOPPED, DaemonStatus.STOPPING):
        return OrchestratorStatus.OFFLINE
    if busy:
        return OrchestratorStatus.BUSY
    return OrchestratorStatus.ONLINE
