"""Cost of one mention→reply: the SQL statements and transactions the server runs for it,
the server's CPU time, and the `message:delta` pushes a client receives per reply. The
server runs with BENCH_COUNT_SQL=1 (bench/serve.py counts through SQLAlchemy events, from
outside the package); 10 orchestrators logged in, one person in every channel, replies
from the loopback model server, which answers at once with a 75-token reply streamed as
75 text deltas (as a real model streams a short answer).

Phases: the idle background (heartbeat, sweeps) over a quiet window, subtracted below;
mentions one at a time (each waits for its reply); plain messages one at a time; one
mention with its statements recorded (the list in docs/perf-plan.md); then an open-loop
load at a rate this machine sustains, for the CPU per mention under load. With `--profile
DIR` py-spy (`pip install -r bench/requirements.txt`) samples the server during that load
into DIR/profile.txt (collapsed stacks: speedscope and flamegraph.pl open them) and a
summary in DIR/top.txt.

Floor: the hand-written floor server (bench/floor_server.py) storing, pushing and
acknowledging plain messages one at a time: its CPU per message and its statements (1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench import pyspy, support
from bench.support import Figure

ORCHESTRATORS = 10
# A short reply as a model streams it: one text delta per token, here one per word.
REPLY_TOKENS = 75
REPLY = " ".join(f"word{n}" for n in range(REPLY_TOKENS))
LOADED_RATE = 10.0  # mentions/s: under this machine's saturation point, so replies keep up


class _Replies:
    """The person's socket: reply arrival times and delta arrival times per mention id."""

    def __init__(self) -> None:
        self.replied: dict[str, float] = {}
        self.deltas: defaultdict[str, list[float]] = defaultdict(list)
        self.changed = asyncio.Event()

    def on_event(self, event: str, data: Any) -> None:
        if not isinstance(data, dict) or not data.get("reply_to_id"):
            return
        if event == "message:new":
            self.replied.setdefault(data["reply_to_id"], time.perf_counter())
            self.changed.set()
        elif event == "message:delta":
            self.deltas[data["reply_to_id"]].append(time.perf_counter())

    async def wait(self, ids: list[str], limit: float) -> int:
        deadline = time.perf_counter() + limit
        while True:
            done = sum(1 for i in ids if i in self.replied)
            left = deadline - time.perf_counter()
            if done == len(ids) or left <= 0:
                return done
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)


async def _send(sio: Any, bot: support.Account, channel: Any, n: int) -> str:
    content = f"@{bot.handle} question {n}: what is the status?"
    ack = await sio.call("message:send", {"channel_id": str(channel), "content": content})
    if not (isinstance(ack, dict) and ack.get("ok")):
        raise RuntimeError(f"mention refused: {ack}")
    return str(ack["message"]["id"])


async def _pg_xacts(url: str) -> tuple[float, float]:
    """Transactions the PostgreSQL database has committed or rolled back, and when (0 on
    SQLite). Backends publish their counts when idle, at most once a second: wait that out."""
    if not url.startswith("postgresql"):
        return 0.0, time.perf_counter()
    import asyncpg
    from sqlalchemy.engine import make_url

    await asyncio.sleep(1.2)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT xact_commit + xact_rollback AS n FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        # This connection's own query is one more transaction, counted next time.
        return float(row["n"]), time.perf_counter()
    finally:
        await conn.close()


async def _stats(http: httpx.AsyncClient, capture: str | None = None) -> dict[str, Any]:
    params = {"capture": capture} if capture else None
    data: dict[str, Any] = (await http.get("/bench/sql", params=params)).json()
    return data


def _delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    keys = ("statements", "transactions", "commits", "rollbacks", "cpu_s", "clock")
    return {k: float(b[k] - a[k]) for k in keys}


def _per(d: dict[str, float], idle: dict[str, float], n: int) -> dict[str, float]:
    """Per mention, with the idle background over the same span taken off."""
    span = d["clock"]
    return {k: (d[k] - idle[k] / idle["clock"] * span) / n for k in d if k != "clock"}


def _window_max(times: list[float], width: float = 0.05) -> int:
    """The most deltas of one reply inside any `width`-second window after its first."""
    rest, best, lo = sorted(times)[1:], 0, 0
    for hi, t in enumerate(rest):
        while t - rest[lo] >= width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def measure(quick: bool, profile_dir: Path | None) -> list[Figure]:
    from tests.support.model_server import ModelServer, ok

    sequential, idle_s, loaded_s = (10, 2.0, 3.0) if quick else (40, 4.0, 8.0)
    log = Path(tempfile.mkstemp(prefix="neolith-bench-cost-", suffix=".log")[1])
    replies = _Replies()
    model_server = ModelServer(default=ok(REPLY, chunks=REPLY_TOKENS))
    async with support.scratch_database("cost") as url, model_server as model:
        seeded = await support.seed(
            url, orchestrators=ORCHESTRATORS, channels=ORCHESTRATORS, people_everywhere=True
        )
        env = support.server_env(
            url,
            anthropic_api_key="bench-key",
            anthropic_base_url=model.url,
            mention_replies_per_channel_per_minute=1_000_000,
            bench_count_sql=1,
        )
        bots, channels = seeded.orchestrators, seeded.orchestrator_channel
        async with (
            support.ServerProcess(env, log) as server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        ):
            await support.login_all(http, [o.email for o in bots])
            admin = await support.login(http, seeded.admin.email)
            person = await support.login(http, seeded.people[0].email)
            await support.wait_running(http, admin, ORCHESTRATORS)
            async with support.socket_client(server.url, person, replies.on_event) as sio:
                for n in range(5):  # warm-up: caches, pools, the model client
                    await replies.wait([await _send(sio, bots[n], channels[n], n)], 10)
                x0 = await _pg_xacts(url)
                s0 = await _stats(http)
                await asyncio.sleep(idle_s)
                idle = _delta(s0, await _stats(http))
                x1 = await _pg_xacts(url)
                # Per second, less this bench's own reading (one transaction each).
                idle_xact_rate = (x1[0] - x0[0] - 1) / (x1[1] - x0[1])
                s0, ids = await _stats(http), []
                for n in range(sequential):
                    ids.append(await _send(sio, bots[n % len(bots)], channels[n % len(bots)], n))
                    await replies.wait(ids[-1:], 10)
                seq = _per(_delta(s0, await _stats(http)), idle, sequential)
                x2 = await _pg_xacts(url)
                if url.startswith("postgresql"):
                    # The database's own count: also the pool's pre-ping round trips (each
                    # an implicit transaction), which SQLAlchemy's events do not see.
                    background = idle_xact_rate * (x2[1] - x1[1]) + 1
                    seq["database_xacts"] = (x2[0] - x1[0] - background) / sequential
                s0 = await _stats(http)
                hello = {"channel_id": str(channels[0]), "content": "hi"}
                for _ in range(sequential):  # plain messages: what every message:send costs
                    await sio.call("message:send", hello)
                plain = _per(_delta(s0, await _stats(http)), idle, sequential)
                await _stats(http, "start")
                t0 = time.perf_counter()
                one = await _send(sio, bots[0], channels[0], 999)
                await replies.wait([one], 10)
                await asyncio.sleep(0.3)  # the job's bookkeeping may follow the push
                captured = (await _stats(http, "stop"))["captured"]
                trace = [f"{(t - t0) * 1000:8.1f} ms  {sql}" for t, sql in captured]
                loaded = await _loaded(
                    sio, replies, http, server, bots, channels, loaded_s, profile_dir
                )
        if profile_dir is not None and (profile_dir / "profile.txt").exists():
            pyspy.summarize(profile_dir)
        floor = await _floor(env, log, seeded, person, sequential)
    os.remove(log)  # kept only when a run fails
    delta_counts = [len(replies.deltas[i]) for i in ids]
    window = max((_window_max(replies.deltas[i]) for i in ids), default=0)
    extra = {
        "sequential": seq,
        "plain_message": plain,
        "idle_per_s": {k: v / idle["clock"] for k, v in idle.items()},
    }
    loaded_note = f"{loaded['answered']}/{loaded['sent']} answered at {LOADED_RATE:.0f}/s"
    return [
        Figure(
            "cost",
            "SQL statements per mention→reply",
            seq["statements"],
            "stmts",
            floor=1.0,
            floor_label="floor server, per message",
            target=("<", 8.01, "value"),
            target_text="<= 8",
            note=f"idle background {extra['idle_per_s']['statements']:.1f} stmts/s taken off",
            extra={**extra, "one_mention": trace},
        ),
        Figure(
            "cost",
            "transactions per mention→reply",
            seq["transactions"],
            "txns",
            floor=1.0,
            floor_label="floor server, per message",
            target=("<", 3.01, "value"),
            target_text="<= 3",
            note=(
                f"PostgreSQL's own count (pg_stat_database, the pool's pre-ping round trips "
                f"included): {seq['database_xacts']:.2f} per mention"
                if "database_xacts" in seq
                else ""
            ),
        ),
        Figure(
            "cost",
            "server CPU per mention→reply (one at a time)",
            seq["cpu_s"] * 1000,
            "ms",
            floor=floor,
            floor_label="floor server, per message",
        ),
        Figure(
            "cost",
            f"server CPU per mention→reply (at {LOADED_RATE:.0f}/s)",
            loaded["cpu_ms"],
            "ms",
            floor=floor,
            floor_label="floor server, per message",
            note=loaded_note,
            extra=loaded,
        ),
        Figure(
            "cost",
            "SQL statements per plain message:send",
            plain["statements"],
            "stmts",
            floor=1.0,
            floor_label="floor server, per message",
            note=f"{plain['transactions']:.2f} transactions, {plain['cpu_s'] * 1000:.2f} ms CPU",
            extra=plain,
        ),
        Figure(
            "cost",
            "message:delta emits per reply",
            sum(delta_counts) / max(len(delta_counts), 1),
            "emits",
            note=f"min {min(delta_counts, default=0)}, max {max(delta_counts, default=0)}",
        ),
        Figure(
            "cost",
            "message:delta emits in 50 ms after the first (max)",
            float(window),
            "emits",
            target=("<", 1.01, "value"),
            target_text="<= 1",
        ),
    ]


async def _loaded(
    sio: Any,
    replies: _Replies,
    http: httpx.AsyncClient,
    server: support.ServerProcess,
    bots: list[support.Account],
    channels: list[Any],
    seconds: float,
    profile_dir: Path | None,
) -> dict[str, Any]:
    """Open-loop mentions at LOADED_RATE (py-spy sampling the server when asked)."""
    spy = pyspy.start(server.pid, seconds, profile_dir) if profile_dir else None
    total = int(LOADED_RATE * seconds)
    s0, t0, ids = await _stats(http), time.perf_counter(), []
    sends = []
    for n in range(total):
        delay = t0 + n / LOADED_RATE - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        bot = n % len(bots)
        sends.append(asyncio.create_task(_send(sio, bots[bot], channels[bot], 10_000 + n)))
    ids = list(await asyncio.gather(*sends))
    answered = await replies.wait(ids, 30)
    d = _delta(s0, await _stats(http))
    if spy is not None:
        spy.wait(timeout=60)
    return {
        "sent": total,
        "answered": answered,
        "cpu_ms": d["cpu_s"] / total * 1000,
        "statements": d["statements"] / total,
        "transactions": d["transactions"] / total,
        "server_cpu_cores": d["cpu_s"] / d["clock"],
    }


async def _floor(
    env: dict[str, str], log: Path, seeded: support.Seeded, token: str, n: int
) -> float:
    """The floor server's CPU per plain message, sent one at a time (ms)."""
    async with (
        support.ServerProcess(env, log, module="bench.floor_server") as server,
        support.socket_client(server.url, token, lambda *_: None) as sio,
    ):
        payload = {"channel_id": str(seeded.channels[0]), "content": "plain message"}
        for _ in range(5):
            await sio.call("message:send", payload)
        cpu0 = server.cpu_seconds()
        for _ in range(n * 10):
            ack = await sio.call("message:send", payload)
            assert ack["ok"], ack
        return (server.cpu_seconds() - cpu0) / (n * 10) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer mentions, shorter load")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--profile", type=Path, help="py-spy the server under load into DIR")
    args = parser.parse_args()
    figures = support.run(lambda: measure(args.quick, args.profile))
    support.emit(figures, args.out)
    if args.out is None:
        one = next(f for f in figures if f.name.startswith("SQL statements"))
        print("\n".join(one.extra["one_mention"]))
        print(json.dumps(one.extra["sequential"], indent=2))


if __name__ == "__main__":
    main()
