"""The restart policy: at once, then doubling with full jitter, capped; give up past the
limit inside the window; forgive after a healthy window."""

from __future__ import annotations

import random

from neolith_orchestrator.daemons.backoff import RestartPolicy, backoff_delay


def test_first_restart_is_immediate_then_doubling_under_the_cap() -> None:
    rng = random.Random(7)
    assert backoff_delay(1, 1.0, 60.0, rng) == 0.0
    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    for attempt, ceiling in enumerate(ceilings, start=2):
        samples = [backoff_delay(attempt, 1.0, 60.0, rng) for _ in range(200)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # full jitter spans the whole range


def test_gives_up_past_max_attempts_within_the_window() -> None:
    policy = RestartPolicy(max_attempts=3, window=600.0, rng=random.Random(1))
    delays = [policy.next_delay(now) for now in (0.0, 1.0, 2.0)]
    assert delays[0] == 0.0 and all(d is not None for d in delays)
    assert policy.next_delay(3.0) is None
    assert policy.restart_count == 3


def test_old_restarts_leave_the_window() -> None:
    policy = RestartPolicy(max_attempts=2, window=10.0)
    assert policy.next_delay(0.0) == 0.0
    assert policy.next_delay(5.0) is not None
    assert policy.next_delay(6.0) is None
    assert policy.next_delay(16.0) is not None  # the first two are older than the window


def test_a_healthy_window_forgives_and_reset_clears() -> None:
    policy = RestartPolicy(max_attempts=2, window=10.0)
    policy.next_delay(0.0)
    policy.next_delay(1.0)
    policy.healthy_since(started=1.0, now=5.0)
    assert policy.restart_count == 2
    policy.healthy_since(started=1.0, now=11.0)
    assert policy.restart_count == 0 and policy.next_delay(11.5) == 0.0
    policy.reset()
    assert policy.recent_restarts == 0
