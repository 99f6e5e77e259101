"""Daemon states and how each shows on the orchestrator row and in presence."""

from __future__ import annotations

from enum import StrEnum

from neolith_orchestrator.db.models import OrchestratorStatus


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
