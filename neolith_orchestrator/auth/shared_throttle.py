"""Login throttling shared by every instance through Redis: one failure window per account
and per client address, whichever instance the guesses go to.

Each window is a sorted set of attempts scored by wall-clock time (the instances share no
monotonic clock; a second of skew between hosts is nothing against a window of minutes),
expiring with the window. An attempt is added to both of its windows and the windows are
read back in one MULTI/EXEC transaction, so concurrent guesses through several instances
are all counted; an attempt that finds a window already full is taken out again and
refused, so, as in memory, a throttled attempt is not counted and waiting out the window
always works. Redis unreachable: this process's in-memory `LoginThrottle` takes over (the
outage is logged once) — logins keep working, throttled per instance meanwhile.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from neolith_orchestrator.auth.throttle import ADDRESS_FAILURE_FACTOR, Attempt, LoginThrottle
from neolith_orchestrator.db.shared_redis import Outage
from neolith_orchestrator.errors import TooManyRequests

_PREFIX = "neolith:login-failures"


@dataclass(frozen=True, slots=True)
class SharedAttempt:
    """One attempt recorded in Redis under `member` in the windows of `keys`."""

    account_key: str
    address_key: str | None
    member: str


class SharedLoginThrottle:
    """`LoginThrottle`'s rules, with the windows in Redis."""

    def __init__(self, redis: Redis, local: LoginThrottle, max_failures: int, window_ms: int):
        self._redis = redis
        self.local = local
        self.window_ms = window_ms
        self.limits = {"account": max_failures, "address": max_failures * ADDRESS_FAILURE_FACTOR}
        self.outage = Outage("login throttling", "failed logins are counted per instance")

    async def attempt(self, account: str, address: str | None) -> SharedAttempt | Attempt:
        """Start an attempt, or raise `TooManyRequests` (`retry_after` in whole seconds)."""
        windows = [(f"{_PREFIX}:account:{account}", self.limits["account"])]
        if address:
            windows.append((f"{_PREFIX}:address:{address}", self.limits["address"]))
        now = time.time()
        window = self.window_ms / 1000
        member = f"{now:.6f}:{uuid.uuid4().hex}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key, limit in windows:
                    pipe.zremrangebyscore(key, "-inf", now - window)
                    pipe.zadd(key, {member: now})
                    pipe.pexpire(key, self.window_ms)
                    # With this attempt newest, the one `limit` places older exists only
                    # when the window was already full; it says when a place frees up.
                    pipe.zrevrange(key, limit, limit, withscores=True)
                results = await pipe.execute()
            waits = [score + window - now for blocking in results[3::4] for _, score in blocking]
            if waits:
                async with self._redis.pipeline(transaction=True) as pipe:
                    for key, _ in windows:
                        pipe.zrem(key, member)
                    await pipe.execute()
        except (RedisError, OSError) as exc:
            self.outage.begin(exc)
            return self.local.attempt(account, address)
        self.outage.end()
        if waits:
            raise TooManyRequests(
                "too many failed logins; try again later",
                retry_after=math.ceil(max(max(waits), 0.001)),
            )
        return SharedAttempt(windows[0][0], windows[1][0] if address else None, member)

    async def succeeded(self, attempt: SharedAttempt | Attempt) -> None:
        """A correct password clears the account's failures and un-counts this attempt for
        the address (the address keeps its other failures)."""
        if isinstance(attempt, Attempt):
            self.local.succeeded(attempt)
            return
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(attempt.account_key)
                if attempt.address_key:
                    pipe.zrem(attempt.address_key, attempt.member)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.outage.begin(exc)
