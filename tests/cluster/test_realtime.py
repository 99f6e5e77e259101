"""Socket.IO across instances: real `serve` processes on one PostgreSQL and one Redis, real
Socket.IO clients on each. Every client sees every message and every reply exactly once,
whichever instance took the post and wherever the daemon runs; channel rooms and presence
follow a person's sockets on every instance."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clients import SocketClient, bearer, connected, login
from tests.support.cluster import cluster
from tests.support.seed import Org
from tests.support.waiting import eventually

pytestmark = pytest.mark.postgres_only


def _ids(client: SocketClient, event: str) -> Counter[str]:
    return Counter(data["id"] for data in client.of(event))


def _deltas(client: SocketClient) -> Counter[tuple[str, int]]:
    return Counter((d["job_id"], d["seq"]) for d in client.of("message:delta"))


async def test_every_client_sees_every_message_and_reply_once(
    database_url: str, redis_url: str, acme: Org, tmp_path: Path, backend: str
) -> None:
    async with cluster(database_url, redis_url, tmp_path) as running:
        a, b, c = await asyncio.gather(
            *(running.start(name) for name in ("node-a", "node-b", "node-c"))
        )
        pat, admin = await login(a.http, "pat@acme.test"), await login(b.http, "admin@acme.test")
        url = f"/api/channels/{acme.channel_id}/messages"
        async with (
            connected(a.url, pat) as pat_on_a,
            connected(b.url, admin) as admin_on_b,
            connected(c.url, pat) as pat_on_c,
        ):
            # ada's daemon runs on C, which takes no post; its status and presence reach
            # the admin on B and the people on A and C.
            await login(c.http, "ada@acme.test")
            ada = str(acme.orchestrator_ids["ada"])
            await eventually(
                lambda: any(
                    d["orchestrator_id"] == ada and d["status"] == "running"
                    for d in admin_on_b.of("daemon:status")
                )
            )
            for person in (pat_on_a, pat_on_c):
                await eventually(
                    lambda p=person: any(
                        d.get("orchestrator_id") == ada for d in p.of("presence:update")
                    )
                )
            clients = (pat_on_a, admin_on_b, pat_on_c)
            posted: list[str] = []
            for i in range(4):
                over_http = await a.http.post(
                    url, json={"content": f"@ada http {i}"}, headers=bearer(pat)
                )
                assert over_http.status_code == 201, over_http.text
                posted.append(over_http.json()["id"])
                ack = await admin_on_b.send(
                    {"channel_id": str(acme.channel_id), "content": f"@ada socket {i}"}
                )
                assert ack["ok"], ack
                posted.append(ack["message"]["id"])

            async def replies() -> list[dict[str, Any]]:
                items = (await a.http.get(url, headers=bearer(pat))).json()["items"]
                answers = [m for m in items if m["reply_to_id"] in posted]
                return answers if len(answers) == len(posted) else []

            answers = await eventually(replies, within=60)
            expected = set(posted) | {m["id"] for m in answers}
            assert len(expected) == 2 * len(posted)
            for client in clients:
                await eventually(lambda cl=client: set(_ids(cl, "message:new")) >= expected)
            # Every reply streamed its deltas before its final message; by now all are in.
            jobs = {d["job_id"] for d in pat_on_a.of("message:delta")}
            assert len(jobs) == len(posted)
            reference = _deltas(pat_on_a)
            for client in clients:
                new = _ids(client, "message:new")
                lost = expected - set(new)
                doubled = {k: n for k, n in new.items() if n > 1}
                assert (lost, doubled) == (set(), {})
                deltas = _deltas(client)
                assert deltas == reference
                assert max(deltas.values()) == 1
                for job in jobs:
                    seqs = sorted(seq for j, seq in deltas if j == job)
                    assert seqs == list(range(1, len(seqs) + 1)) and seqs


async def test_a_member_added_through_one_instance_receives_on_another(
    database_url: str, redis_url: str, acme: Org, tmp_path: Path, backend: str
) -> None:
    async with cluster(database_url, redis_url, tmp_path) as running:
        a, b = await asyncio.gather(*(running.start(name) for name in ("node-a", "node-b")))
        admin, pat = await login(a.http, "admin@acme.test"), await login(b.http, "pat@acme.test")
        created = await a.http.post("/api/channels", json={"name": "ops"}, headers=bearer(admin))
        ops = created.json()["id"]
        ops_url, general_url = (
            f"/api/channels/{ops}/messages",
            (f"/api/channels/{acme.channel_id}/messages"),
        )
        async with connected(b.url, pat) as pat_on_b:
            added = await a.http.post(
                f"/api/channels/{ops}/members",
                json={"user_id": str(acme.person.id)},
                headers=bearer(admin),
            )
            assert added.status_code == 201, added.text
            # Posted through A right after the join: B has applied the join by then.
            first = await a.http.post(ops_url, json={"content": "welcome"}, headers=bearer(admin))
            first_id = first.json()["id"]
            await eventually(lambda: first_id in _ids(pat_on_b, "message:new"))

            removed = await a.http.delete(
                f"/api/channels/{ops}/members/{acme.person.id}", headers=bearer(admin)
            )
            assert removed.json()["removed"] is True
            hidden = await a.http.post(ops_url, json={"content": "secret"}, headers=bearer(admin))
            # Events of one channel arrive in order: once this one is in, "secret" would be.
            barrier = await a.http.post(general_url, json={"content": "b"}, headers=bearer(admin))
            barrier_id = barrier.json()["id"]
            await eventually(lambda: barrier_id in _ids(pat_on_b, "message:new"))
            assert hidden.json()["id"] not in _ids(pat_on_b, "message:new")
            assert _ids(pat_on_b, "message:new")[first_id] == 1


async def test_presence_counts_a_persons_sockets_on_every_instance(
    database_url: str, redis_url: str, acme: Org, tmp_path: Path, backend: str
) -> None:
    async with cluster(database_url, redis_url, tmp_path) as running:
        a, b = await asyncio.gather(*(running.start(name) for name in ("node-a", "node-b")))
        admin, pat = await login(a.http, "admin@acme.test"), await login(a.http, "pat@acme.test")

        def pats(client: SocketClient) -> list[str]:
            return [
                d["status"]
                for d in client.of("presence:update")
                if d["user_id"] == str(acme.person.id)
            ]

        async with connected(a.url, admin) as watcher:
            async with connected(a.url, pat):
                await eventually(lambda: pats(watcher) == ["ONLINE"])
                async with connected(b.url, pat):
                    # A second socket on another instance: pat was online already.
                    pass
                # pat still holds a socket on A: no offline yet. Closing it is the barrier.
            await eventually(lambda: pats(watcher)[-1:] == ["OFFLINE"])
            assert pats(watcher) == ["ONLINE", "OFFLINE"]
            # The other way round: first socket on B, last on A.
            async with connected(b.url, pat):
                await eventually(lambda: len(pats(watcher)) == 3)
                async with connected(a.url, pat):
                    pass
            await eventually(lambda: len(pats(watcher)) == 4)
            assert pats(watcher) == ["ONLINE", "OFFLINE", "ONLINE", "OFFLINE"]
