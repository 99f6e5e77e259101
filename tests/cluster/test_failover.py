"""Failover between real `serve` processes on one PostgreSQL and Redis: the instance that
owns an orchestrator's daemon dies (SIGKILL) or stops (SIGTERM) with mentions waiting and
one being written, and a survivor takes the daemon over and answers each mention exactly
once. An instance that does not own the daemon (restarted, or logged into) leaves the
owner's daemon and its row alone, and shows it running on its owner."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import MentionJob, Message, Orchestrator
from tests.e2e.clients import bearer, login
from tests.support.cluster import Cluster, Instance, cluster
from tests.support.model_server import ModelServer, slow
from tests.support.seed import Org
from tests.support.waiting import eventually

LEASE_TTL = 3.0
MENTIONS = 6
pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def model() -> AsyncIterator[ModelServer]:
    """A model that takes about half a second per reply: one is in flight at the kill."""
    async with ModelServer(default=slow("Answered.", delay=0.07, chunks=2)) as server:
        yield server


def _env(model: ModelServer, lease_ttl: float = LEASE_TTL) -> dict[str, str]:
    return {
        "DAEMON_LEASE_TTL": str(int(lease_ttl * 1000)),
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": model.url,
    }


async def _post(node: Instance, token: str, org: Org, content: str) -> uuid.UUID:
    url = f"/api/channels/{org.channel_id}/messages"
    response = await node.http.post(url, json={"content": content}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def _replies(database: Database, mentions: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many replies each mention has (0 = lost, 2 = doubled)."""
    async with database.transaction() as session:
        rows = await session.execute(
            select(Message.reply_to_id, func.count())
            .where(Message.reply_to_id.in_(mentions))
            .group_by(Message.reply_to_id)
        )
        counted = {reply_to: int(n) for reply_to, n in rows.all()}
    return {m: counted.get(m, 0) for m in mentions}


async def _jobs(database: Database, mentions: list[uuid.UUID]) -> list[str]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(MentionJob.status).where(MentionJob.message_id.in_(mentions))
        )
        return sorted(rows)


async def _row(database: Database, oid: uuid.UUID) -> tuple[str, str | None]:
    async with database.transaction() as session:
        row = await session.get(Orchestrator, oid, populate_existing=True)
        assert row is not None
        return row.status, row.lease_owner


async def _view(node: Instance, token: str, oid: uuid.UUID) -> dict[str, Any]:
    response = await node.http.get(f"/api/admin/daemons/{oid}", headers=bearer(token))
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def _owned_by(
    database: Database, oid: uuid.UUID, owner: str | None, status: str | None = None
) -> None:
    async def owned() -> bool:
        row_status, lease_owner = await _row(database, oid)
        return lease_owner == owner and status in (None, row_status)

    await eventually(owned, within=20, interval=0.05)


async def _a_owns_ada(running: Cluster, database: Database, acme: Org) -> tuple[Instance, ...]:
    """node-a runs ada's daemon; node-b starts after, and ada logs in through it too."""
    oid = acme.orchestrator_ids["ada"]
    a = await running.start("node-a")
    await login(a.http, "ada@acme.test")
    await _owned_by(database, oid, "node-a", "ONLINE")
    b = await running.start("node-b")  # restores ada's live session: refused, quietly
    await login(b.http, "ada@acme.test")  # a second login through the other instance
    return a, b


async def _all_answered_once(
    database: Database, mentions: list[uuid.UUID], since: float, node: Instance
) -> float:
    """Wait until every mention has its reply; returns the seconds since `since`."""

    async def answered() -> bool:
        return all((await _replies(database, mentions)).values())

    try:
        await eventually(answered, within=LEASE_TTL + 30, interval=0.05)
    except AssertionError:
        raise AssertionError(
            f"unanswered: {await _replies(database, mentions)}\n{node.log_text()}"
        ) from None
    took = time.monotonic() - since
    assert await _jobs(database, mentions) == ["done"] * len(mentions)
    # Every job is closed: nothing is left to answer, so these counts are final.
    assert await _replies(database, mentions) == dict.fromkeys(mentions, 1)
    return took


async def test_sigkill_of_the_owner_hands_its_daemon_over_losing_and_doubling_nothing(
    database_url: str,
    database: Database,
    redis_url: str,
    acme: Org,
    model: ModelServer,
    tmp_path: Path,
    backend: str,
) -> None:
    oid = acme.orchestrator_ids["ada"]
    async with cluster(database_url, redis_url, tmp_path, **_env(model)) as running:
        a, b = await _a_owns_ada(running, database, acme)
        admin = await login(b.http, "admin@acme.test")
        pat = await login(b.http, "pat@acme.test")
        view = await _view(b, admin, oid)
        assert (view["status"], view["instance_id"]) == ("running", "node-a"), view
        assert await _row(database, oid) == ("ONLINE", "node-a")

        mentions = [await _post(b, pat, acme, f"@ada question {i}") for i in range(MENTIONS)]
        await eventually(lambda: model.in_flight > 0, interval=0.01)  # one being written
        killed = time.monotonic()
        await a.kill()

        await _owned_by(database, oid, "node-b")
        taken = time.monotonic() - killed
        answered = await _all_answered_once(database, mentions, killed, b)
        print(
            f"\nSIGKILL failover: taken over after {taken:.2f} s, all answered after "
            f"{answered:.2f} s (lease TTL {LEASE_TTL} s)"
        )
        assert taken < LEASE_TTL + 10  # generous: the machine is shared
        view = await _view(b, admin, oid)
        assert (view["status"], view["instance_id"]) == ("running", "node-b"), view
        assert "Traceback" not in b.log_text()


async def test_a_restart_of_the_non_owner_leaves_the_owners_daemon_and_row_alone(
    database_url: str,
    database: Database,
    redis_url: str,
    acme: Org,
    model: ModelServer,
    tmp_path: Path,
    backend: str,
) -> None:
    oid = acme.orchestrator_ids["ada"]
    async with cluster(database_url, redis_url, tmp_path, **_env(model)) as running:
        a, b = await _a_owns_ada(running, database, acme)
        assert await b.stop() == 0
        b = await running.start("node-b")  # restores ada again: refused, no error
        admin = await login(b.http, "admin@acme.test")
        on_b, on_a = await _view(b, admin, oid), await _view(a, admin, oid)
        assert (on_b["status"], on_b["instance_id"], on_b["note"]) == (
            "running",
            "node-a",
            "running on node-a",
        ), on_b
        assert (on_a["status"], on_a["instance_id"], on_a["restart_count"]) == (
            "running",
            "node-a",
            0,
        ), on_a
        assert await _row(database, oid) == ("ONLINE", "node-a")
        pat = await login(b.http, "pat@acme.test")
        mention = await _post(b, pat, acme, "@ada still there?")
        await _all_answered_once(database, [mention], time.monotonic(), a)
        await _owned_by(database, oid, "node-a", "ONLINE")  # BUSY while it answered
        assert "gave up" not in b.log_text()


async def test_sigterm_hands_the_daemon_over_at_once_losing_no_mention(
    database_url: str,
    database: Database,
    redis_url: str,
    acme: Org,
    model: ModelServer,
    tmp_path: Path,
    backend: str,
) -> None:
    oid = acme.orchestrator_ids["ada"]
    # A lease that would outlast the test: only the hand-over lets node-b take it.
    env = _env(model, lease_ttl=120)
    async with cluster(database_url, redis_url, tmp_path, **env) as running:
        a, b = await _a_owns_ada(running, database, acme)
        pat = await login(b.http, "pat@acme.test")
        mentions = [await _post(b, pat, acme, f"@ada question {i}") for i in range(MENTIONS)]
        await eventually(lambda: model.in_flight > 0, interval=0.01)
        assert await a.stop() == 0  # the reply under way finishes; the rest wait
        stopped = time.monotonic()
        await _owned_by(database, oid, "node-b")
        taken = time.monotonic() - stopped
        answered = await _all_answered_once(database, mentions, stopped, b)
        print(
            f"\nSIGTERM hand-over: taken over {taken:.2f} s after node-a exited, all "
            f"answered after {answered:.2f} s"
        )


async def test_a_logout_through_another_instance_stops_the_daemon_at_once(
    database_url: str,
    database: Database,
    redis_url: str,
    acme: Org,
    model: ModelServer,
    tmp_path: Path,
    backend: str,
) -> None:
    oid = acme.orchestrator_ids["ada"]
    async with cluster(database_url, redis_url, tmp_path, **_env(model)) as running:
        a, b = await asyncio.gather(running.start("node-a"), running.start("node-b"))
        ada = await login(a.http, "ada@acme.test")
        await _owned_by(database, oid, "node-a", "ONLINE")
        # The same token, through the other instance (a load balancer's choice).
        response = await b.http.post("/api/auth/logout", headers=bearer(ada))
        assert response.status_code in (200, 204), response.text
        logged_out = time.monotonic()
        # Without the notification node-a would see it at its next session sweep (60 s).
        await _owned_by(database, oid, None, "OFFLINE")
        print(
            f"\nlogout through node-b stopped node-a's daemon after "
            f"{time.monotonic() - logged_out:.2f} s"
        )
        admin = await login(b.http, "admin@acme.test")
        view = await _view(a, admin, oid)
        assert (view["status"], view["running"]) == ("stopped", False), view
