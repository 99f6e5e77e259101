"""The ASGI application: Socket.IO under `/socket.io/`, the Starlette HTTP API for the rest.

`create_app(settings)` builds nothing that touches the outside world; the lifespan does, in
order — database (migrated), reply generator, emitter, daemon manager, auth, the Socket.IO
handlers, the session-expiry sweep (and first, with `METRICS_PORT`, the metrics server) —
and takes it all down in reverse on shutdown: no new work is accepted, in-flight
`message:send` handlers drain, every daemon stops gracefully (unfinished mention jobs go
back to pending), then the sweep, Socket.IO, the generator and the database close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import socketio
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from neolith_orchestrator.ai.factory import build_generator
from neolith_orchestrator.auth.service import Authenticator
from neolith_orchestrator.auth.watcher import SessionWatcher
from neolith_orchestrator.chat.notify import SESSIONS_CHANNEL, MentionListener
from neolith_orchestrator.config import Settings
from neolith_orchestrator.context import AppContext
from neolith_orchestrator.daemons.manager import DaemonManager
from neolith_orchestrator.db import migrate
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.http import admin, auth, channels, docs, metrics, runtime
from neolith_orchestrator.http.errors import EXCEPTION_HANDLERS
from neolith_orchestrator.http.security import SecurityHeaders, cors_middleware, socketio_origins
from neolith_orchestrator.realtime import cluster
from neolith_orchestrator.realtime.emitter import SocketIOEmitter
from neolith_orchestrator.realtime.packets import GuardedPacket
from neolith_orchestrator.realtime.server import RealtimeServer
from neolith_orchestrator.web import api as web_api
from neolith_orchestrator.web import routes as web

_log = logging.getLogger(__name__)

SESSION_SWEEP_TASK = "neolith:session-sweep"


class App:
    """An ASGI callable; `context` is the running app's resources (None when stopped)."""

    def __init__(self, settings: Settings, *, manager: DaemonManager | None = None) -> None:
        self.settings = settings
        self._manager = manager
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=cluster.client_manager(settings),
            logger=False,
            engineio_logger=False,
            cors_allowed_origins=socketio_origins(settings.cors_origins),
            serializer=GuardedPacket,
        )
        self.emitter = SocketIOEmitter(self.sio)
        self.realtime = RealtimeServer(self.sio, self.emitter)
        # Built here, not in the lifespan: scrapes read whatever is running at the time.
        self.metrics_registry = metrics.build_registry(lambda: self.context)
        own_port = settings.metrics_port == 0
        self.http = Starlette(
            routes=[
                *auth.routes,
                *channels.routes,
                *admin.routes,
                *runtime.routes,
                *(metrics.routes if own_port else []),
                *docs.routes,
                *web_api.routes,
                *web.routes,  # last: `/` and the `/web` mount
            ],
            exception_handlers=EXCEPTION_HANDLERS,
            middleware=[cors_middleware(settings.cors_origins)],
            lifespan=self._lifespan,
        )
        self.http.state.metrics_registry = self.metrics_registry
        self._asgi = SecurityHeaders(socketio.ASGIApp(self.sio, other_asgi_app=self.http))
        self.context: AppContext | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            ctx = await self._start(stack)
            try:
                yield
            finally:
                ctx.ready = False
                _log.info("shutting down")
        _log.info("shut down")

    async def _start(self, stack: AsyncExitStack) -> AppContext:
        """Acquire everything; each step registers its own undo on `stack` (run in reverse)."""
        settings = self.settings
        if settings.metrics_port:
            # First: a taken port fails the start before anything else is acquired.
            server = metrics.MetricsServer(
                self.metrics_registry, settings.host, settings.metrics_port
            )
            await server.start()
            stack.push_async_callback(server.stop)
        database = Database(settings)
        stack.push_async_callback(database.dispose)
        await migrate.upgrade(database)
        generator = build_generator(settings)
        stack.push_async_callback(generator.aclose)
        stack.push_async_callback(self.sio.shutdown)
        redis = await cluster.open_shared(stack, settings, self.sio, self.realtime)
        manager = self._manager or DaemonManager(settings)
        await manager.startup(database, self.emitter, generator)
        stack.push_async_callback(manager.shutdown)
        watcher = SessionWatcher(
            database,
            manager,
            # A backstop: each socket is closed at its own expiry by the realtime server's timer.
            after_sweep=self.realtime.close_expired,
        )
        manager.on_takeover = watcher.adopt
        if database.dialect == "postgresql":
            # A logout through another instance reaches this one's daemons at once.
            logouts = MentionListener(
                settings.database_url,
                watcher.sessions_changed,
                on_reconnect=watcher.look_again,
                channel=SESSIONS_CHANNEL,
            )
            await logouts.start()
            stack.push_async_callback(logouts.aclose)
        ctx = AppContext(
            settings=settings,
            database=database,
            generator=generator,
            manager=manager,
            watcher=watcher,
            auth=Authenticator(database, settings, watcher, redis=redis),
            realtime=self.realtime,
        )
        restored = await watcher.restore()
        if restored:
            _log.info("restored the daemons of %d logged-in orchestrator(s)", restored)
        sweep = asyncio.create_task(watcher.run(), name=SESSION_SWEEP_TASK)
        ctx.tasks.append(sweep)
        stack.push_async_callback(_cancel, ctx.tasks)
        self.realtime.attach(ctx)
        self.http.state.context = ctx
        self.context = ctx
        stack.push_async_callback(self._detach, ctx)
        ctx.ready = True
        _log.info("ready (database %s, %s replies)", database.dialect, generator.name)
        return ctx

    async def _detach(self, ctx: AppContext) -> None:
        self.realtime.attach(None)
        await self.realtime.drain(ctx.settings.daemon_stop_grace / 1000)
        self.http.state.context = None
        self.context = None


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, Exception):
            _log.error("task %s ended with an error", task.get_name(), exc_info=result)


def create_app(settings: Settings, *, manager: DaemonManager | None = None) -> App:
    """The application for `settings`. Pass `manager` to share one (e.g. the process's
    singleton from `get_daemon_manager`); by default each app builds its own."""
    return App(settings, manager=manager)
