"""The Redis that several instances share (`REDIS_URL`), and how its outages are reported.

Redis carries what must be seen by every instance at once but need not survive a restart:
Socket.IO events (python-socketio's Redis manager, `realtime.cluster`), login-failure
windows (`auth.shared_throttle`) and who is online (`realtime.presence`). Each user of it
keeps working on its own when Redis is unreachable — this instance's sockets still get
their events, the throttle counts in memory — so an outage never takes the HTTP API down.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

_log = logging.getLogger(__name__)

# Short timeouts: a command waits on Redis inside a login or a socket connect, and a Redis
# that does not answer must cost seconds, not the request.
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 2.0


def connect(url: str, *, timeout: float | None = COMMAND_TIMEOUT) -> Redis:
    """A client for `url` (no connection is made until the first command). A command that
    fails on a pooled connection Redis dropped (it restarted) is retried once, at once, on
    a new one; `timeout` bounds each command (None: wait, as a subscriber does)."""
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=timeout,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 1),
    )


class Outage:
    """Logs once when a Redis outage starts and once when it ends, whatever the number of
    failed commands in between."""

    def __init__(self, what: str, fallback: str) -> None:
        self.what = what
        self.fallback = fallback
        self.down = False

    def begin(self, exc: BaseException) -> None:
        if not self.down:
            self.down = True
            _log.error(
                "Redis unreachable for %s (%s: %s); %s until it is back",
                self.what,
                type(exc).__name__,
                exc,
                self.fallback,
            )

    def end(self) -> None:
        if self.down:
            self.down = False
            _log.warning("Redis reachable again for %s", self.what)
