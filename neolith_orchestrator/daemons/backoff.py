"""The restart policy, pure: when to restart a crashed daemon, and when to give up.

The first crash in a window restarts at once (a crash is back within milliseconds); the
following ones wait with exponential back-off and full jitter (initial, doubling, capped).
More than `max_attempts` restarts inside `window` gives up. A daemon that has run healthy
for a whole window starts afresh.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def backoff_delay(
    attempt: int, initial: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before restart number `attempt` (1-based): 0 for the first, then
    full jitter over min(cap, initial * 2**(attempt-2))."""
    if attempt <= 1:
        return 0.0
    ceiling = min(cap, initial * 2 ** (attempt - 2))
    return (rng or random).uniform(0, ceiling)


@dataclass(slots=True)
class RestartPolicy:
    max_attempts: int
    window: float
    initial: float = 1.0
    cap: float = 60.0
    # None: the `random` module's shared generator. One policy per daemon, so a generator
    # each (2.5 KB of state) would be most of an idle daemon's memory.
    rng: random.Random | None = None
    # Restart times inside the window: a few entries at most, so a list (a deque is 600 B),
    # made on the first restart.
    _restarts: list[float] | None = None
    restart_count: int = 0

    def _trim(self, now: float) -> None:
        while self._restarts and now - self._restarts[0] > self.window:
            del self._restarts[0]

    def next_delay(self, now: float) -> float | None:
        """Delay before the next restart, or None to give up. Records the attempt."""
        self._trim(now)
        if self._restarts is None:
            self._restarts = []
        if len(self._restarts) >= self.max_attempts:
            return None
        self._restarts.append(now)
        self.restart_count += 1
        return backoff_delay(len(self._restarts), self.initial, self.cap, self.rng)

    def healthy_since(self, started: float, now: float) -> None:
        """Forget past crashes once the daemon has run healthy for a whole window."""
        if now - started >= self.window and self._restarts:
            self._restarts.clear()
            self.restart_count = 0

    def reset(self) -> None:
        if self._restarts:
            self._restarts.clear()
        self.restart_count = 0

    @property
    def recent_restarts(self) -> int:
        return len(self._restarts or ())
