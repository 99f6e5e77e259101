"""Socket.IO across instances: python-socketio's `AsyncRedisManager`, and the two things
this service needs beyond it.

With `REDIS_URL` set, the Socket.IO server's client manager is `ClusterManager`: every emit
reaches this instance's sockets and is published on one Redis channel for the others.

- `follow(source, target)`: every socket in room `source`, on every instance, enters (or
  leaves) room `target`. A user added to a channel through one instance gets the channel's
  room on the sockets they hold on the others that way: the library forwards `enter_room`
  by socket id, and one instance does not know another's ids. The request rides the
  manager's own Redis channel, as an emit of a reserved event to a room no socket is in, so
  each instance applies it before any event published after it — a message posted right
  after the join is never missed — and an instance that does not know the event delivers it
  to nobody.
- Outages: Redis down at start or going away is logged once when it starts and once when
  it ends (`db.shared_redis.Outage`), not once per event; meanwhile emits still reach this
  instance's sockets, publishing is retried at most once a second, and the listener
  reconnects with a back-off capped at a few seconds, so events flow again soon after Redis
  is back. Events published during the outage are not replayed: clients re-read history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import socketio
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from neolith_orchestrator.config import Settings
from neolith_orchestrator.db import shared_redis
from neolith_orchestrator.db.shared_redis import COMMAND_TIMEOUT, Outage
from neolith_orchestrator.realtime.presence import Presence

if TYPE_CHECKING:
    from neolith_orchestrator.realtime.server import RealtimeServer

_log = logging.getLogger(__name__)

CHANNEL = "neolith:socketio"
FOLLOW_EVENT = "neolith:follow"
LISTENER_TASK = "neolith:socketio-redis"
_PUBLISH_RETRY = 1.0
_LISTEN_RETRY_MIN = 0.25
_LISTEN_RETRY_MAX = 5.0
_NAMESPACE = "/"


class ClusterManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    """`AsyncRedisManager` with `follow`, logged-once outages and a bounded reconnect."""

    def __init__(self, url: str) -> None:
        super().__init__(url, channel=CHANNEL, logger=_log)
        self.outage = Outage("Socket.IO events", "events reach this instance's sockets only")
        # Publishing and listening use separate clients: a reconnecting listener never
        # swaps the client under a publish in flight.
        self._publisher = self._client(timeout=COMMAND_TIMEOUT)
        self._listener: Redis | None = None
        self._pubsub: PubSub | None = None
        self._next_publish = 0.0
        self._closed = False
        self.thread: asyncio.Task[None] | None = None

    def _client(self, timeout: float | None = None) -> Redis:
        # The listener has no command timeout: it blocks on its connection until a message
        # comes. The publisher has one: an emit must not hang on a Redis that went silent.
        return shared_redis.connect(self.redis_url, timeout=timeout)

    def start(self, sio: socketio.AsyncServer) -> None:
        """Start listening now (python-socketio would wait for the first client), under a
        task name of ours so shutdown checks find it."""
        self._closed = False
        if sio.manager_initialized:
            return
        sio.manager_initialized = True
        self.initialize()
        if self.thread is not None:
            self.thread.set_name(LISTENER_TASK)

    async def aclose(self) -> None:
        """Stop the listener and close both Redis clients; later emits stay local."""
        self._closed = True
        if self.thread is not None:
            self.thread.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.thread
            self.thread = None
            # A server started again (tests do) starts a new listener.
            self.server.manager_initialized = False
        await self._close_listener()
        await self._publisher.aclose()

    async def follow(self, source: str, target: str, *, join: bool) -> None:
        """Every socket in `source`, on every instance, enters (`join`) or leaves `target`."""
        message = {
            "method": "emit",
            "event": FOLLOW_EVENT,
            "data": [{"source": source, "target": target, "join": join}],
            "binary": False,
            "namespace": _NAMESPACE,
            "room": FOLLOW_EVENT,
            "skip_sid": None,
            "callback": None,
            "host_id": self.host_id,
        }
        await self._handle_emit(message)
        await self._publish(message)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        if message.get("event") != FOLLOW_EVENT:
            await super()._handle_emit(message)
            return
        try:
            (order,) = message["data"]
            source, target, join = order["source"], order["target"], bool(order["join"])
        except (KeyError, TypeError, ValueError):
            _log.warning("ignored a malformed %s request", FOLLOW_EVENT)
            return
        for sid, _eio_sid in list(self.get_participants(_NAMESPACE, source)):
            if join:
                await self.enter_room(sid, _NAMESPACE, target)
            else:
                await self.leave_room(sid, _NAMESPACE, target)

    async def _publish(self, data: dict[str, Any]) -> None:
        if self._closed or (self.outage.down and time.monotonic() < self._next_publish):
            return
        try:
            await self._publisher.publish(self.channel, self.json.dumps(data))
        except (RedisError, OSError) as exc:
            self._next_publish = time.monotonic() + _PUBLISH_RETRY
            self.outage.begin(exc)
        else:
            self.outage.end()

    async def _redis_listen_with_retries(self) -> AsyncIterator[dict[str, Any]]:
        delay = _LISTEN_RETRY_MIN
        while True:
            try:
                self._listener = self._client()
                self._pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(self.channel)
                self.outage.end()
                delay = _LISTEN_RETRY_MIN
                async for message in self._pubsub.listen():
                    yield message
            except Exception as exc:
                # Whatever breaks the subscription (a dropped connection surfaces as several
                # error types) is an outage: reconnect, never end the listener.
                self.outage.begin(exc)
                await self._close_listener()
                await asyncio.sleep(delay)
                delay = min(delay * 2, _LISTEN_RETRY_MAX)

    async def _close_listener(self) -> None:
        pubsub, listener = self._pubsub, self._listener
        self._pubsub, self._listener = None, None
        with contextlib.suppress(Exception):
            if pubsub is not None:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            if listener is not None:
                await listener.aclose()


def client_manager(settings: Settings) -> ClusterManager | None:
    """The Socket.IO client manager for `settings`: None (python-socketio's in-process
    default) without `REDIS_URL`."""
    if settings.redis_url is None:
        return None
    return ClusterManager(settings.redis_url)


async def open_shared(
    stack: AsyncExitStack, settings: Settings, sio: socketio.AsyncServer, realtime: RealtimeServer
) -> Redis | None:
    """With `REDIS_URL`: start the Socket.IO manager's listener, count presence in Redis, and
    return the client the login throttle shares; each is closed through `stack`. Nothing
    here waits for Redis to answer: an instance starts, and serves, with Redis down."""
    manager = sio.manager
    if settings.redis_url is None or not isinstance(manager, ClusterManager):
        return None
    manager.start(sio)
    stack.push_async_callback(manager.aclose)
    redis = shared_redis.connect(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    await realtime.use_presence(Presence(redis, settings.instance_id))
    # Runs before the client closes: a socket closing late counts on this instance alone.
    stack.callback(realtime.use_local_presence)
    return redis
