"""Redis is an aid, never a dependency of the HTTP API: an instance starts with Redis down,
serves while it is away, logs each outage once when it starts and once when it ends, and
its events cross instances again once Redis is back. One instance without `REDIS_URL`
works alone as before. And an app with Redis closes everything it opened."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from neolith_orchestrator.realtime.cluster import LISTENER_TASK
from tests.e2e.clients import SocketClient, bearer, connected, login
from tests.e2e.conftest import e2e_settings, running
from tests.support.cluster import Instance, cluster
from tests.support.redis import RedisServer, remove, start_redis
from tests.support.seed import Org
from tests.support.waiting import eventually

DOWN = "Redis unreachable for Socket.IO events"
BACK = "Redis reachable again for Socket.IO events"


@pytest.fixture
async def own_redis() -> AsyncIterator[RedisServer]:
    """A Redis this test stops and starts again (on the same port)."""
    server = await asyncio.to_thread(start_redis)
    try:
        yield server
    finally:
        await asyncio.to_thread(remove, server)


async def _post(node: Instance, token: str, org: Org, content: str) -> str:
    url = f"/api/channels/{org.channel_id}/messages"
    response = await node.http.post(url, json={"content": content}, headers=bearer(token))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _crosses(node: Instance, token: str, org: Org, watcher: SocketClient) -> None:
    """Post through `node` until `watcher` (on another instance) gets one: what was posted
    while Redis was away is not replayed, what is posted once it is back arrives."""
    posted: list[str] = []

    async def arrived() -> bool:
        posted.append(await _post(node, token, org, f"probe {len(posted)}"))
        seen = {d["id"] for d in watcher.of("message:new")}
        return bool(seen & set(posted))

    try:
        await eventually(arrived, within=30, interval=0.2)
    except AssertionError:
        raise AssertionError(f"nothing crossed after Redis came back:\n{node.log_text()}") from None
    last = await _post(node, token, org, "after the probe")
    await eventually(lambda: last in {d["id"] for d in watcher.of("message:new")})


@pytest.mark.postgres_only
async def test_redis_down_at_start_and_going_away_never_takes_the_api_down(
    database_url: str, own_redis: RedisServer, acme: Org, tmp_path: Path, backend: str
) -> None:
    await asyncio.to_thread(own_redis.stop)
    async with cluster(database_url, own_redis.url(), tmp_path) as running_cluster:
        a, b = await asyncio.gather(*(running_cluster.start(name) for name in ("node-a", "node-b")))
        pat, admin = await login(a.http, "pat@acme.test"), await login(b.http, "admin@acme.test")
        async with connected(a.url, pat) as pat_on_a, connected(b.url, admin) as admin_on_b:
            local = await _post(b, admin, acme, "while Redis is down")
            await eventually(lambda: local in {d["id"] for d in admin_on_b.of("message:new")})

            await asyncio.to_thread(own_redis.start)
            await _crosses(b, admin, acme, pat_on_a)

            await asyncio.to_thread(own_redis.stop)
            # Gone again: logins and posts still work on both.
            await login(a.http, "admin@acme.test")
            await _post(a, pat, acme, "Redis went away")
            await asyncio.to_thread(own_redis.start)
            await _crosses(a, pat, acme, admin_on_b)
        for node in (a, b):
            text = node.log_text()
            assert (text.count(DOWN), text.count(BACK)) == (2, 2), text
            assert "Traceback" not in text


@pytest.mark.postgres_only
async def test_one_instance_without_redis_works_alone(
    database_url: str, acme: Org, tmp_path: Path, backend: str
) -> None:
    async with cluster(database_url, None, tmp_path) as running_cluster:
        alone = await running_cluster.start("alone")
        await login(alone.http, "ada@acme.test")
        pat = await login(alone.http, "pat@acme.test")
        async with connected(alone.url, pat) as socket:
            mention = await _post(alone, pat, acme, "@ada are you there?")

            def answered() -> bool:
                return any(d["reply_to_id"] == mention for d in socket.of("message:new"))

            await eventually(answered, within=30)
            assert socket.of("message:delta")
        assert "Redis" not in alone.log_text()


async def test_an_app_with_redis_closes_everything_it_opened(
    database_url: str, redis_url: str, acme: Org
) -> None:
    async with running(e2e_settings(database_url, redis_url=redis_url)) as live:
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert LISTENER_TASK in names
        pat = await login(live.http, "pat@acme.test")
        async with connected(live.url, pat) as socket:
            ack = await socket.send({"channel_id": str(acme.channel_id), "content": "hi"})
            assert ack["ok"], ack
            mine = ack["message"]["id"]
            await eventually(lambda: mine in {d["id"] for d in socket.of("message:new")})
    # running() has checked that no task of ours, the Redis listener included, lives on.


async def test_an_app_starts_serves_and_stops_with_redis_unreachable(
    database_url: str, acme: Org, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = await asyncio.to_thread(start_redis)
    await asyncio.to_thread(remove, nowhere)  # a port where no Redis answers
    settings = e2e_settings(database_url, redis_url=nowhere.url())
    with caplog.at_level(logging.WARNING, logger="neolith_orchestrator"):
        async with running(settings) as live:
            assert (await live.http.get("/readyz")).status_code == 200
            pat = await login(live.http, "pat@acme.test")
            async with connected(live.url, pat) as socket:
                for i in range(3):
                    ack = await socket.send({"channel_id": str(acme.channel_id), "content": f"{i}"})
                    assert ack["ok"], ack
                await eventually(lambda: len(socket.of("message:new")) == 3)
            listed = await live.http.get(
                f"/api/channels/{acme.channel_id}/messages", headers=bearer(pat)
            )
            assert isinstance(listed, httpx.Response) and listed.status_code == 200
    logged = [r.getMessage() for r in caplog.records]
    assert sum(DOWN in m for m in logged) == 1, logged
