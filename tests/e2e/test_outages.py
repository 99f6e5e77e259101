"""A PostgreSQL restart under a real server with mentions pending and in flight: posting
during the outage answers 503 `unavailable` with Retry-After (HTTP and the Socket.IO ack),
`/readyz` says so, and once the database is back every mention is answered exactly once,
with no admin, and one WARNING and one INFO in the log instead of a traceback per retry."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import MentionJob, Message
from neolith_orchestrator.errors import Unavailable
from tests.conftest import make_settings
from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import e2e_settings, running
from tests.support.model_server import ModelServer, slow
from tests.support.outages import fresh_database, outage, outage_lines, own_postgres, tracebacks
from tests.support.postgres import PostgresServer
from tests.support.seed import seed_org
from tests.support.waiting import eventually, leftover_tasks

pytestmark = pytest.mark.postgres_only
MENTIONS_EACH = 8  # for each of two orchestrators: 16 mentions


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with own_postgres() as server:
        yield server


async def _replies(url: str) -> dict[uuid.UUID, list[Message]] | None:
    """Each mention and the replies to it; None while the database is unreachable."""
    database = Database(make_settings(url))
    try:
        async with database.transaction() as session:
            jobs = list(await session.execute(select(MentionJob.message_id, MentionJob.status)))
            mentions = {message_id for message_id, _ in jobs}
            rows = await session.scalars(select(Message).where(Message.reply_to_id.in_(mentions)))
            found: dict[uuid.UUID, list[Message]] = {m: [] for m in mentions}
            for reply in rows:
                assert reply.reply_to_id is not None
                found[reply.reply_to_id].append(reply)
            return found
    except Unavailable:
        return None
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    ("health_ms", "outage_s"),
    [(5_000, 1.0), (400, 4.0)],
    ids=["shorter-than-health-interval", "longer-than-health-interval"],
)
async def test_a_database_restart_loses_no_mention_and_needs_no_admin(
    backend: str,
    pg: PostgresServer,
    caplog: pytest.LogCaptureFixture,
    health_ms: int,
    outage_s: float,
) -> None:
    caplog.set_level(logging.INFO)
    url = await fresh_database(pg)
    seeder = Database(make_settings(url))
    try:
        org = await seed_org(seeder, handles=("ada", "bob"))
    finally:
        await seeder.dispose()
    async with ModelServer() as model:
        model.default = slow("On it.", delay=0.1)  # about 0.4 s a reply
        settings = e2e_settings(
            url,
            anthropic_api_key="test-key",
            anthropic_base_url=model.url,
            daemon_health_check_interval=health_ms,
            daemon_max_restart_attempts=1,
            mention_replies_per_channel_per_minute=100,
        )
        async with running(settings) as live:
            pat = await login(live.http, "pat@acme.test")
            for handle in ("ada", "bob"):
                await login(live.http, f"{handle}@acme.test")
            messages = f"/api/channels/{org.channel_id}/messages"
            async with connected(live.url, pat) as socket:
                for n in range(MENTIONS_EACH):
                    for handle in ("ada", "bob"):
                        posted = await live.http.post(
                            messages, json={"content": f"@{handle} #{n}?"}, headers=bearer(pat)
                        )
                        assert posted.status_code == 201, posted.text
                # Some answered, some in flight at the model, the rest pending.
                await eventually(lambda: model.in_flight > 0 and len(model.requests) > 2)
                async with outage(pg, outage_s):
                    refused = await live.http.post(
                        messages, json={"content": "@ada during?"}, headers=bearer(pat)
                    )
                    assert refused.status_code == 503, refused.text
                    assert refused.json()["error"]["code"] == "unavailable"
                    assert int(refused.headers["Retry-After"]) >= 1
                    ack = await socket.send(
                        {"channel_id": str(org.channel_id), "content": "@bob during?"}
                    )
                    assert ack["ok"] is False
                    assert ack["error"]["code"] == "unavailable"
                    assert ack["error"]["retry_after"] >= 1
                    ready = await live.http.get("/readyz")
                    assert ready.status_code == 503 and ready.json()["database"] is False
                await eventually(lambda: _ready(live.http), within=30, interval=0.1)

                async def all_answered() -> dict[uuid.UUID, list[Message]] | None:
                    found = await _replies(url)
                    return found if found and all(found.values()) else None

                answers = await eventually(all_answered, within=60, interval=0.2)
            # Nothing posted during the outage was stored; every mention has one reply.
            assert len(answers) == 2 * MENTIONS_EACH
            assert all(len(replies) == 1 for replies in answers.values()), answers
            assert all(r.content == "On it." for rs in answers.values() for r in rs)
            admin = await login(live.http, "admin@acme.test")
            daemons = (await live.http.get("/api/admin/daemons", headers=bearer(admin))).json()
            assert {d["handle"]: d["status"] for d in daemons} == {
                "ada": "running",
                "bob": "running",
            }
            assert all(d["restart_count"] == 0 and not d["gave_up"] for d in daemons)
            # An outage is neither a crash nor a give-up.
            metrics = (await live.http.get("/metrics")).text.splitlines()
            samples = dict(line.rsplit(" ", 1) for line in metrics if line[:1] not in ("#", ""))
            assert float(samples["neolith_daemon_crashes_total"]) == 0
            assert float(samples["neolith_daemon_gave_up_total"]) == 0
    assert leftover_tasks(("db:probe", "mention-listener")) == []
    down, up = outage_lines(caplog)
    assert len(down) == 1 and len(up) == 1, (down, up)
    assert tracebacks(caplog) == []


async def _ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200
