"""Login throttling: a sliding window of recent failures per account and per client address.

Pure and in-memory (one process owns its counters); the clock is injectable so tests can
move time. A throttled attempt is refused before the password is checked and is not
counted itself, so waiting out the window always works.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from neolith_orchestrator.errors import TooManyRequests

Clock = Callable[[], float]

# One address may serve many people (an office behind NAT), so it gets a larger budget
# than a single account before it is throttled.
ADDRESS_FAILURE_FACTOR = 4


class SlidingWindow:
    """Counts events per key over the last `window` seconds."""

    def __init__(
        self, limit: int, window: float, clock: Clock = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float] | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self.window:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        return events

    def retry_after(self, key: str) -> float | None:
        """Seconds until `key` may try again, or None when it may try now."""
        now = self._clock()
        events = self._recent(key, now)
        if events is None or len(events) < self.limit:
            return None
        return max(events[-self.limit] + self.window - now, 0.001)

    def record(self, key: str, at: float | None = None) -> float:
        """Count one event for `key` (now, unless `at` is given); returns its time."""
        now = self._clock() if at is None else at
        events = self._recent(key, now)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._prune(now)
            events = self._events[key] = deque(maxlen=self.limit)
        events.append(now)
        return now

    def forget(self, key: str, at: float) -> None:
        """Un-count the event recorded for `key` at `at`, if it is still there."""
        events = self._events.get(key)
        if events is not None and at in events:
            events.remove(at)
            if not events:
                del self._events[key]

    def reset(self, key: str) -> None:
        self._events.pop(key, None)

    def __len__(self) -> int:
        return len(self._events)

    def _prune(self, now: float) -> None:
        for key in list(self._events):
            self._recent(key, now)
        # Still full: forget the keys that failed first (dicts keep insertion order).
        overflow = len(self._events) - self.max_keys // 2
        for key in list(self._events)[: max(overflow, 0)]:
            del self._events[key]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One login attempt, counted as a failure until it is known to have succeeded."""

    account: str
    address: str | None
    at: float


class LoginThrottle:
    """Refuses logins for an account or an address after too many recent failures.

    An attempt counts as a failure from the moment it starts, so a burst of concurrent
    guesses cannot all slip past the check while their passwords are being verified.
    """

    def __init__(self, max_failures: int, window_ms: int, clock: Clock = time.monotonic) -> None:
        window = window_ms / 1000
        self.accounts = SlidingWindow(max_failures, window, clock)
        self.addresses = SlidingWindow(max_failures * ADDRESS_FAILURE_FACTOR, window, clock)

    def attempt(self, account: str, address: str | None) -> Attempt:
        """Start an attempt, or raise `TooManyRequests` (`retry_after` in whole seconds)."""
        waits = [self.accounts.retry_after(account)]
        if address:
            waits.append(self.addresses.retry_after(address))
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            raise TooManyRequests(
                "too many failed logins; try again later", retry_after=math.ceil(wait)
            )
        at = self.accounts.record(account)
        if address:
            self.addresses.record(address, at)
        return Attempt(account, address, at)

    def succeeded(self, attempt: Attempt) -> None:
        """A correct password clears the account's failures and un-counts this attempt
        for the address (the address keeps its other failures)."""
        self.accounts.reset(attempt.account)
        if attempt.address:
            self.addresses.forget(attempt.address, attempt.at)
