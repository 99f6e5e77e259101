"""neolith-orchestrator: AI colleagues for team chat.

When an orchestrator logs in, the process's `DaemonManager` starts its
`OrchestratorDaemon`, which answers every channel message that @mentions it with a reply
written by Claude, steered by the orchestrator's charter.
"""

from __future__ import annotations

from neolith_orchestrator.config import Settings, load_settings
from neolith_orchestrator.daemons.daemon import OrchestratorDaemon
from neolith_orchestrator.daemons.manager import (
    DaemonManager,
    create_orchestrator_daemon,
    get_daemon_manager,
    reset_daemon_manager,
)
from neolith_orchestrator.daemons.status import DaemonStatus

__all__ = [
    "DaemonManager",
    "DaemonStatus",
    "OrchestratorDaemon",
    "Settings",
    "create_orchestrator_daemon",
    "get_daemon_manager",
    "load_settings",
    "reset_daemon_manager",
]
