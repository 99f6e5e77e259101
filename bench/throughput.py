"""Throughput: messages stored per second when 50 Socket.IO clients post as fast as their
acks come back (closed loop), one message in ten mentioning the channel's orchestrator
(10 channels, 5 people and 1 logged-in orchestrator each; replies from the loopback model
server, which answers at once).

Floors, both from the same run: the hand-written floor server (bench/floor_server.py: the
same stack, one INSERT + COMMIT, push and ack per message) under the same clients, tokens
and seeded data, run after the app has stopped; and the bare INSERT-and-COMMIT loop of a
message row into the same `messages` table with the same driver and database (aiosqlite on
one connection, as the app's SQLite pool; asyncpg with 50 workers on a pool of 10, as the
app's PostgreSQL pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import support
from bench.support import HIGHER, Figure

CLIENTS = 50
CHANNELS = 10
MENTION_EVERY = 10


async def _insert_floor(url: str, seeded: support.Seeded, seconds: float) -> tuple[float, int]:
    """Rows per second of INSERT + COMMIT through the raw driver; the rows are removed."""
    from sqlalchemy.engine import make_url

    channel, author, org = seeded.channels[0], seeded.admin.user_id, seeded.org_id
    marker = f"floor-{uuid.uuid4().hex[:8]}"
    parsed = make_url(url)
    count = 0
    if parsed.get_backend_name() == "sqlite":
        import aiosqlite

        def row(n: int) -> tuple[Any, ...]:
            now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
            return (uuid.uuid4().hex, org.hex, channel.hex, author.hex, f"{marker} {n}", now)

        sql = (
            "INSERT INTO messages (id, organization_id, channel_id, author_id, content, "
            "chain_depth, metadata, created_at) VALUES (?, ?, ?, ?, ?, 0, '{}', ?)"
        )
        async with aiosqlite.connect(parsed.database or "", isolation_level=None) as db:
            for pragma in ("foreign_keys=ON", "busy_timeout=30000", "synchronous=NORMAL"):
                await db.execute(f"PRAGMA {pragma}")
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                await db.execute("BEGIN IMMEDIATE")
                await db.execute(sql, row(count))
                await db.execute("COMMIT")
                count += 1
            elapsed = time.perf_counter() - t0
            await db.execute("DELETE FROM messages WHERE content LIKE ?", (f"{marker} %",))
        return count / elapsed, 1
    import asyncpg

    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    sql = (
        "INSERT INTO messages (id, organization_id, channel_id, author_id, content, "
        "chain_depth, metadata, created_at) VALUES ($1, $2, $3, $4, $5, 0, '{}', $6)"
    )
    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    try:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute(
                        sql,
                        uuid.uuid4(),
                        org,
                        channel,
                        author,
                        f"{marker} {count}",
                        datetime.now(UTC),
                    )
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - t0
        await pool.execute("DELETE FROM messages WHERE content LIKE $1", f"{marker} %")
    finally:
        await pool.close()
    return count / elapsed, 10


async def measure(quick: bool) -> list[Figure]:
    from tests.support.model_server import ModelServer

    seconds, floor_seconds = (5.0, 3.0) if quick else (15.0, 6.0)
    log = Path(tempfile.mkstemp(prefix="neolith-bench-throughput-", suffix=".log")[1])
    async with support.scratch_database("throughput") as url, ModelServer() as model:
        seeded = await support.seed(url, orchestrators=CHANNELS, people=CLIENTS, channels=CHANNELS)
        env = support.server_env(
            url,
            anthropic_api_key="bench-key",
            anthropic_base_url=model.url,
            mention_replies_per_channel_per_minute=1_000_000,
        )
        async with (
            support.ServerProcess(env, log) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        ):
            await support.login_all(http, [o.email for o in seeded.orchestrators])
            tokens = await support.login_all(http, [p.email for p in seeded.people])
            admin = await support.login(http, seeded.admin.email)
            await support.wait_running(http, admin, CHANNELS)
            floor, connections = await _insert_floor(url, seeded, floor_seconds)
            result = await _load(server, seeded, tokens, seconds)
        # The same clients and tokens against the hand-written server, the app stopped.
        async with support.ServerProcess(env, log, module="bench.floor_server") as floor_server:
            hand = await _load(floor_server, seeded, tokens, seconds)
    os.remove(log)  # kept only when a run fails
    note = (
        f"{result['replies_per_s']:.0f} replies/s also stored; ack p50 "
        f"{result['ack_p50_ms']:.1f} ms, p99 {result['ack_p99_ms']:.1f} ms; "
        f"{result['errors']} errors"
    )
    hand_note = (
        f"floor server ack p50 {hand['ack_p50_ms']:.1f} ms, p99 {hand['ack_p99_ms']:.1f} ms; "
        f"{hand['errors']} errors; app x{result['messages_per_s'] / floor:.3f} of the bare "
        f"INSERT loop ({floor:,.0f}/s on {connections} connection(s))"
    )
    name = f"messages stored/s ({CLIENTS} clients, 1 in {MENTION_EVERY} a mention)"
    return [
        Figure(
            "throughput",
            name,
            result["messages_per_s"],
            "msg/s",
            floor=hand["messages_per_s"],
            floor_label="hand-written floor server",
            better=HIGHER,
            target=(">=", 0.5, "ratio"),
            target_text=">= 0.5 x floor",
            note=note,
            extra={**result, "floor_server": hand, "insert_loop_per_s": floor},
        ),
        Figure(
            "throughput",
            name.replace("messages", "app messages", 1) + " vs bare INSERT loop",
            result["messages_per_s"],
            "msg/s",
            floor=floor,
            floor_label="raw INSERT+COMMIT",
            better=HIGHER,
            note=hand_note,
        ),
    ]


async def _load(
    server: support.ServerProcess, seeded: support.Seeded, tokens: list[str], seconds: float
) -> dict[str, Any]:
    replies: set[str] = set()
    acks: list[float] = []
    counting = False
    stored = 0
    errors = 0
    stop = asyncio.Event()
    bot_of_channel = dict(zip(seeded.orchestrator_channel, seeded.orchestrators, strict=True))

    def on_event(event: str, data: Any) -> None:
        if not (counting and event == "message:new" and isinstance(data, dict)):
            return
        if data.get("reply_to_id") and data.get("metadata", {}).get("job_id"):
            replies.add(data["id"])

    async def client(j: int, sio: Any) -> None:
        nonlocal stored, errors
        channel = seeded.channels[j % CHANNELS]
        bot = bot_of_channel[channel]
        n = j  # stagger the mentions across clients
        while not stop.is_set():
            n += 1
            text = f"message {n} from {j}"
            if n % MENTION_EVERY == 0:
                text = f"@{bot.handle} {text}"
            t0 = time.perf_counter()
            ack = await sio.call(
                "message:send", {"channel_id": str(channel), "content": text}, timeout=60
            )
            if counting:
                acks.append(time.perf_counter() - t0)
                if isinstance(ack, dict) and ack.get("ok"):
                    stored += 1
                else:
                    errors += 1

    async with _clients(server.url, tokens, on_event) as sockets:
        tasks = [asyncio.create_task(client(j, s)) for j, s in enumerate(sockets)]
        await asyncio.sleep(1.0)  # warm-up: every client has a round trip in flight
        counting = True
        cpu0, client0 = server.cpu_seconds(), support.cpu_seconds()
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)
        counting = False
        elapsed = time.perf_counter() - t0
        server_cpu = server.cpu_seconds() - cpu0
        client_cpu = support.cpu_seconds() - client0
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "messages_per_s": stored / elapsed,
        "replies_per_s": len(replies) / elapsed,
        "stored": stored,
        "errors": errors,
        "ack_p50_ms": support.percentile(acks, 50) * 1000,
        "ack_p99_ms": support.percentile(acks, 99) * 1000,
        "seconds": elapsed,
        # Cores busy: the server's, and the clients' (one process) - near 1.0 means that
        # process, not the database, set the pace.
        "server_cpu_cores": server_cpu / elapsed,
        "client_cpu_cores": client_cpu / elapsed,
        "server_cpu_ms_per_message": server_cpu / max(stored, 1) * 1000,
    }


@contextlib.asynccontextmanager
async def _clients(url: str, tokens: list[str], on_event: Any) -> Any:
    """One connected socket per token; all closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        connecting = [
            stack.enter_async_context(support.socket_client(url, t, on_event)) for t in tokens
        ]
        yield list(await asyncio.gather(*connecting))


def main() -> None:
    args = support.scenario_args(__doc__ or "")
    support.emit(support.run(lambda: measure(args.quick)), args.out)


if __name__ == "__main__":
    main()
