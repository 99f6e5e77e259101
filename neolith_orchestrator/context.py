"""What a running app holds: built by the app's lifespan, read by HTTP handlers and the
Socket.IO server. Nothing here exists before start-up or after shutdown."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from neolith_orchestrator.ai.generator import ReplyGenerator
from neolith_orchestrator.auth.service import Authenticator
from neolith_orchestrator.auth.watcher import SessionWatcher
from neolith_orchestrator.config import Settings
from neolith_orchestrator.db.engine import Database

if TYPE_CHECKING:
    from neolith_orchestrator.daemons.manager import DaemonManager
    from neolith_orchestrator.realtime.server import RealtimeServer


@dataclass
class AppContext:
    """The app's resources while it runs (see `app.App` for their lifecycle)."""

    settings: Settings
    database: Database
    generator: ReplyGenerator
    manager: DaemonManager
    watcher: SessionWatcher
    auth: Authenticator
    realtime: RealtimeServer
    started_at: float = field(default_factory=time.monotonic)
    # The lifespan's own background tasks (named; cancelled and awaited on shutdown).
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready: bool = False

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at
