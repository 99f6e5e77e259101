"""Login throttling shared through Redis: N instances allow the guesses of one, not N times
as many, even when the guesses arrive at once; without Redis reachable each instance still
throttles on its own."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path

import pytest

from neolith_orchestrator.auth.shared_throttle import SharedAttempt, SharedLoginThrottle
from neolith_orchestrator.auth.throttle import Attempt, LoginThrottle
from neolith_orchestrator.db import shared_redis
from neolith_orchestrator.errors import TooManyRequests
from tests.support.cluster import cluster
from tests.support.redis import _free_port
from tests.support.seed import PASSWORD, Org

MAX_FAILURES = 5


@pytest.mark.postgres_only
async def test_three_instances_allow_the_guesses_of_one(
    database_url: str, redis_url: str, acme: Org, tmp_path: Path, backend: str
) -> None:
    async with cluster(
        database_url, redis_url, tmp_path, AUTH_MAX_FAILURES=str(MAX_FAILURES)
    ) as running:
        nodes = await asyncio.gather(
            *(running.start(name) for name in ("node-a", "node-b", "node-c"))
        )
        guesses = [
            nodes[i % len(nodes)].http.post(
                "/api/auth/login", json={"email": "pat@acme.test", "password": f"guess {i}"}
            )
            for i in range(30)
        ]
        answers = await asyncio.gather(*guesses)
        assert Counter(r.status_code for r in answers) == {
            401: MAX_FAILURES,
            429: 30 - MAX_FAILURES,
        }
        for refused in (r for r in answers if r.status_code == 429):
            assert int(refused.headers["Retry-After"]) > 0
        # The account is throttled on every instance, the right password included.
        for node in nodes:
            right = await node.http.post(
                "/api/auth/login", json={"email": "pat@acme.test", "password": PASSWORD}
            )
            assert right.status_code == 429
        # Another account from the same address still logs in.
        other = await nodes[0].http.post(
            "/api/auth/login", json={"email": "admin@acme.test", "password": PASSWORD}
        )
        assert other.status_code == 200


async def test_concurrent_attempts_through_two_clients_are_all_counted(redis_url: str) -> None:
    clients = [shared_redis.connect(redis_url) for _ in range(2)]
    try:
        throttles = [SharedLoginThrottle(c, LoginThrottle(3, 60_000), 3, 60_000) for c in clients]

        async def attempt(i: int) -> str:
            try:
                await throttles[i % 2].attempt("pat@acme.test", f"10.0.0.{i}")
            except TooManyRequests:
                return "refused"
            return "allowed"

        outcomes = await asyncio.gather(*(attempt(i) for i in range(40)))
        assert Counter(outcomes) == {"allowed": 3, "refused": 37}
        # Refused attempts were taken out again: only the allowed ones are in the windows.
        window = "neolith:login-failures"
        assert await clients[0].zcard(f"{window}:account:pat@acme.test") == 3
        per_address = [await clients[0].zcard(f"{window}:address:10.0.0.{i}") for i in range(40)]
        assert sum(per_address) == 3
        other = await throttles[0].attempt("someone@acme.test", "10.0.0.0")
        assert isinstance(other, SharedAttempt)
        # A success clears the account everywhere.
        await throttles[1].succeeded(other)
        assert await clients[0].exists(other.account_key) == 0
    finally:
        for client in clients:
            await client.aclose()


async def test_redis_unreachable_falls_back_to_memory_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = shared_redis.connect(f"redis://127.0.0.1:{_free_port()}/0")
    try:
        throttle = SharedLoginThrottle(client, LoginThrottle(2, 60_000), 2, 60_000)
        with caplog.at_level(logging.WARNING, logger="neolith_orchestrator.db.shared_redis"):
            first = await throttle.attempt("pat@acme.test", None)
            await throttle.attempt("pat@acme.test", None)
            with pytest.raises(TooManyRequests):
                await throttle.attempt("pat@acme.test", None)
        assert isinstance(first, Attempt)
        logged = [r.getMessage() for r in caplog.records]
        assert len(logged) == 1 and "login throttling" in logged[0]
    finally:
        await client.aclose()
