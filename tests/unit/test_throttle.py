"""The login throttle: a sliding window per account and per address, on a fake clock."""

from __future__ import annotations

import pytest

from neolith_orchestrator.auth.throttle import ADDRESS_FAILURE_FACTOR, LoginThrottle, SlidingWindow
from neolith_orchestrator.errors import TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_window_blocks_at_the_limit_and_reopens_as_failures_age_out() -> None:
    clock = Clock()
    window = SlidingWindow(limit=3, window=60, clock=clock)
    for _ in range(2):
        window.record("k")
        clock.now += 10
    assert window.retry_after("k") is None
    window.record("k")  # third failure at t=20
    assert window.retry_after("k") == pytest.approx(40)
    clock.now += 20  # the first failure (t=0) leaves the window at t=60
    assert window.retry_after("k") == pytest.approx(20)
    clock.now += 20
    assert window.retry_after("k") is None
    assert window.retry_after("other") is None


def test_window_forgets_and_resets_keys() -> None:
    clock = Clock()
    window = SlidingWindow(limit=2, window=60, clock=clock)
    first = window.record("k")
    window.record("k")
    assert window.retry_after("k") is not None
    window.forget("k", first)
    assert window.retry_after("k") is None
    window.record("k")
    window.reset("k")
    assert len(window) == 0


def test_window_stays_bounded_under_many_keys() -> None:
    clock = Clock()
    window = SlidingWindow(limit=2, window=60, clock=clock, max_keys=100)
    for i in range(1_000):
        window.record(f"k{i}")
    assert len(window) <= 100
    assert window.retry_after("k999") is None  # one failure: still allowed


def test_account_is_throttled_after_max_failures_with_whole_seconds() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window_ms=300_000, clock=clock)
    for _ in range(3):
        throttle.attempt("pat@acme.test", "10.0.0.1")
    with pytest.raises(TooManyRequests) as caught:
        throttle.attempt("pat@acme.test", "10.0.0.2")
    assert caught.value.retry_after == 300
    # Other accounts from a different address are unaffected.
    throttle.attempt("kim@acme.test", "10.0.0.3")
    clock.now += 300
    throttle.attempt("pat@acme.test", "10.0.0.2")


def test_address_is_throttled_across_accounts() -> None:
    throttle = LoginThrottle(max_failures=2, window_ms=60_000, clock=Clock())
    for i in range(2 * ADDRESS_FAILURE_FACTOR):
        throttle.attempt(f"user{i}@acme.test", "10.0.0.9")
    with pytest.raises(TooManyRequests):
        throttle.attempt("fresh@acme.test", "10.0.0.9")
    throttle.attempt("fresh@acme.test", "10.0.0.10")


def test_success_clears_the_account_and_uncounts_itself_for_the_address() -> None:
    throttle = LoginThrottle(max_failures=2, window_ms=60_000, clock=Clock())
    throttle.attempt("pat@acme.test", "10.0.0.1")
    good = throttle.attempt("pat@acme.test", "10.0.0.1")
    throttle.succeeded(good)
    assert throttle.accounts.retry_after("pat@acme.test") is None
    assert len(throttle.addresses._events["10.0.0.1"]) == 1
    throttle.attempt("pat@acme.test", "10.0.0.1")  # not throttled


def test_a_throttled_attempt_is_not_counted() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=1, window_ms=10_000, clock=clock)
    throttle.attempt("pat@acme.test", None)
    for _ in range(5):
        clock.now += 1
        with pytest.raises(TooManyRequests):
            throttle.attempt("pat@acme.test", None)
    clock.now += 5  # 10 s after the only counted failure
    throttle.attempt("pat@acme.test", None)
