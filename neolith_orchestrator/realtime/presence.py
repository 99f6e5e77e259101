"""Who is online: a person is online while they hold at least one socket on any instance.

Alone, an instance counts its own sockets (the caller passes its local answer). With Redis,
each person's sockets of every instance are one set (`neolith:presence:<user>`, members
`<instance>:<sid>`), changed and counted in one transaction, so two sockets opening or
closing at once on two instances still give exactly one ONLINE and one OFFLINE. A dead
instance's sockets stay in the sets until it starts again under the same `INSTANCE_ID`
(it clears its own at start). Redis unreachable: the local answer, and the outage is
logged once.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from redis.exceptions import RedisError

from neolith_orchestrator.db.shared_redis import Outage

_PREFIX = "neolith:presence"


class Presence:
    """Answers "is this the person's first socket?" and "was it their last?"."""

    def __init__(self, redis: Redis | None = None, instance_id: str = "") -> None:
        self._redis = redis
        self._instance = instance_id
        self.outage = Outage("presence", "online and offline are counted on this instance")

    def _key(self, user_id: uuid.UUID) -> str:
        return f"{_PREFIX}:{user_id}"

    def _index(self) -> str:
        # The users this instance has sockets in, so a restart can clear them.
        return f"{_PREFIX}-instance:{self._instance}"

    def _member(self, sid: str) -> str:
        return f"{self._instance}:{sid}"

    async def arrived(self, user_id: uuid.UUID, sid: str, *, locally_first: bool) -> bool:
        """Count a socket in; True when it is the person's first anywhere."""
        if self._redis is None:
            return locally_first
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self._key(user_id), self._member(sid))
                pipe.scard(self._key(user_id))
                pipe.sadd(self._index(), str(user_id))
                _, count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            self.outage.begin(exc)
            return locally_first
        self.outage.end()
        return int(count) == 1

    async def left(self, user_id: uuid.UUID, sid: str, *, locally_last: bool) -> bool:
        """Count a socket out; True when it was the person's last anywhere."""
        if self._redis is None:
            return locally_last
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.srem(self._key(user_id), self._member(sid))
                pipe.scard(self._key(user_id))
                _, count = await pipe.execute()
        except (RedisError, OSError) as exc:
            self.outage.begin(exc)
            return locally_last
        self.outage.end()
        return int(count) == 0

    async def clear_instance(self) -> None:
        """Forget the sockets an earlier run of this instance left behind (it died)."""
        if self._redis is None:
            return
        mine = "".join("\\" + c if c in "*?[]\\" else c for c in self._instance) + ":*"
        try:
            for raw in await self._redis.smembers(self._index()):
                text = raw.decode() if isinstance(raw, bytes) else raw
                key = self._key(uuid.UUID(text))
                stale = [m async for m in self._redis.sscan_iter(key, match=mine)]
                if stale:
                    await self._redis.srem(key, *stale)
            await self._redis.delete(self._index())
        except (RedisError, OSError) as exc:
            self.outage.begin(exc)
