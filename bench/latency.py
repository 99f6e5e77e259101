"""Mention to reply: a Socket.IO client posts mentions at a steady offered rate (open loop:
sends follow the clock, not the acks) and times each one until the reply's `message:new`
reaches it. The server runs in its own process with 100 orchestrators logged in; the
Anthropic-compatible loopback model server (tests/support/model_server.py) answers at once.

Offered rates: 50, 100 and 200 mentions/s for 10 s each, and before them short steps
(2, 5, 10, ... /s) climbed until p99 passes 1 s, for the saturation point: the first rate
whose p99 passes 100 ms (one bisection narrows it).

Floor: the hand-written floor server (bench/floor_server.py, its own process on the same
database, idle while the app is measured) at the same offered rate — a plain message
stored, pushed to the room and acknowledged, timed to its ack; measured for every rate
before the app's first mention, so no backlog of the app's shares the machine with it.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import socketio

from bench import support
from bench.support import HIGHER, Figure

ORCHESTRATORS = 100
CHANNELS = 10
# The offered rates (10 s each), and the steps that look for the saturation point
# (the first rate whose p99 passes SATURATED_MS), climbed until one does.
RATES = {"full": (50, 100, 200), "quick": (50, 200)}
STEPS = {"full": (2, 5, 10, 20, 30, 40), "quick": (2, 5, 10, 20)}
SATURATED_MS = 100.0
# The climb stops where the server no longer keeps up: the queue, not the work, sets p99.
BEHIND_MS = 1000.0


class _Probe:
    """Sends at a fixed rate and records (sent, answered) times per request."""

    def __init__(self, sio: Any) -> None:
        self.sio = sio
        self.sent: dict[int, float] = {}
        self.done: dict[int, float] = {}
        self._by_message: dict[str, int] = {}
        self._early: dict[str, float] = {}
        self.lag: list[float] = []
        self.errors: list[str] = []
        self.disconnected = False

    def on_event(self, event: str, data: Any) -> None:
        if event != "message:new" or not isinstance(data, dict):
            return
        parent = data.get("reply_to_id")
        if parent is None:
            return
        now = time.perf_counter()
        seq = self._by_message.get(parent)
        if seq is None:
            self._early[parent] = now
        else:
            self.done.setdefault(seq, now)

    async def offer(self, rate: float, seconds: float, payload: Any, *, ack_ends: bool) -> None:
        """Emit `payload(seq)` `rate` times a second for `seconds`; with `ack_ends` the ack
        is the answer (the floor), else the reply's message:new is."""
        total = int(rate * seconds)
        t0 = time.perf_counter()
        for seq in range(total):
            due = t0 + seq / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            try:
                await self.sio.emit("message:send", payload(seq), callback=self._ack(seq, ack_ends))
            except socketio.exceptions.SocketIOError:
                # An overloaded server can miss the engine.io heartbeat and drop us.
                self.disconnected = True
                return
            self.lag.append(max(0.0, now - due))
            self.sent[seq] = now

    def _ack(self, seq: int, ack_ends: bool) -> Any:
        def on_ack(reply: Any = None, *_: Any) -> None:
            now = time.perf_counter()
            if ack_ends:
                self.done[seq] = now
                return
            if not (isinstance(reply, dict) and reply.get("ok")):
                self.errors.append(str(reply)[:200])
                return
            message_id = reply["message"]["id"]
            self._by_message[message_id] = seq
            early = self._early.pop(message_id, None)
            if early is not None:
                self.done.setdefault(seq, early)

        return on_ack

    async def drain(self, limit: float) -> None:
        """Wait until every request is answered, or `limit` seconds."""
        deadline = time.perf_counter() + limit
        while len(self.done) < len(self.sent) and time.perf_counter() < deadline:
            if self.disconnected or not self.sio.connected:
                self.disconnected = True
                return
            await asyncio.sleep(0.02)

    def latencies_ms(self) -> list[float]:
        return [
            (self.done[s] - t) * 1000 if s in self.done else math.inf for s, t in self.sent.items()
        ]


def _summary(rate: float, ours: _Probe, floor: _Probe, backlog: int) -> dict[str, Any]:
    lat, base = ours.latencies_ms(), floor.latencies_ms()
    answered = sum(1 for x in lat if math.isfinite(x))
    note = (
        f"{answered}/{len(lat)} answered within the window; client send lag p99 "
        f"{support.percentile(ours.lag, 99) * 1000:.1f} ms"
    )
    if ours.errors:
        note += f"; {len(ours.errors)} send errors"
    if ours.disconnected or floor.disconnected:
        note += "; the server dropped the client (overloaded)"
    if backlog:
        note += f"; {backlog} mentions still queued after the wait"
    return {
        "rate": rate,
        "sent": len(lat),
        "answered": answered,
        "p50_ms": support.percentile(lat, 50),
        "p99_ms": support.percentile(lat, 99),
        "floor_p50_ms": support.percentile(base, 50),
        "floor_p99_ms": support.percentile(base, 99),
        "note": note,
    }


def _figures(step: dict[str, Any], seconds: float) -> list[Figure]:
    rate = step["rate"]
    out = []
    for p in (50, 99):
        target = ("<", 25.0, "over_floor") if rate == 200 and p == 99 else None
        out.append(
            Figure(
                "latency",
                f"mention→reply p{p} @ {rate}/s",
                step[f"p{p}_ms"],
                "ms",
                floor=step[f"floor_p{p}_ms"],
                floor_label="floor server round trip",
                target=target,
                target_text="overhead < 25 ms" if target else "",
                note=step["note"] if p == 99 else "",
                extra={"offered_s": seconds, "sent": step["sent"], "answered": step["answered"]},
            )
        )
    return out


def _saturation(steps: list[dict[str, Any]]) -> Figure:
    """The first offered rate whose p99 passes SATURATED_MS (or not every mention answered)."""
    ordered = sorted(steps, key=lambda s: s["rate"])
    bad = [s for s in ordered if s["p99_ms"] > SATURATED_MS]
    good = [s for s in ordered if s["p99_ms"] <= SATURATED_MS]
    first_bad = bad[0]["rate"] if bad else None
    last_good = max((s["rate"] for s in good if not bad or s["rate"] < bad[0]["rate"]), default=0)
    behind = next((s["rate"] for s in ordered if s["p99_ms"] > BEHIND_MS), None)
    table = "; ".join(
        f"{s['rate']:g}/s p99 "
        + (f"{s['p99_ms']:.0f} ms" if math.isfinite(s["p99_ms"]) else "unanswered")
        for s in ordered
    )
    return Figure(
        "latency",
        f"saturation point (first rate with p99 > {SATURATED_MS:.0f} ms)",
        float(first_bad) if first_bad is not None else None,
        "mentions/s",
        better=HIGHER,
        note=(
            (
                f"p99 within {SATURATED_MS:.0f} ms up to {last_good:g}/s"
                if last_good
                else f"p99 over {SATURATED_MS:.0f} ms at every rate tried"
            )
            + f"; falls behind (p99 > {BEHIND_MS / 1000:.0f} s) "
            + (f"at {behind:g}/s" if behind else "at no rate tried")
            + f"; {table}"
        ),
        extra={"steps": ordered, "last_good": last_good, "behind": behind},
    )


async def measure(quick: bool) -> list[Figure]:
    from tests.support.model_server import ModelServer

    mode = "quick" if quick else "full"
    seconds, step_s, floor_s, drain = (3.0, 2.0, 1.5, 6.0) if quick else (10.0, 5.0, 3.0, 15.0)
    figures: list[Figure] = []
    log = Path(tempfile.mkstemp(prefix="neolith-bench-latency-", suffix=".log")[1])
    async with support.scratch_database("latency") as url, ModelServer() as model:
        seeded = await support.seed(
            url,
            orchestrators=ORCHESTRATORS,
            people=1,
            channels=CHANNELS,
            people_everywhere=True,
        )
        env = support.server_env(
            url,
            anthropic_api_key="bench-key",
            anthropic_base_url=model.url,
            # The per-channel fair-use limit would defer replies; it is not what we time.
            mention_replies_per_channel_per_minute=1_000_000,
        )
        async with (
            support.ServerProcess(env, log) as server,
            support.ServerProcess(env, log, module="bench.floor_server") as floor_server,
            httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        ):
            await support.login_all(http, [o.email for o in seeded.orchestrators])
            admin = await support.login(http, seeded.admin.email)
            person = await support.login(http, seeded.people[0].email)
            await support.wait_running(http, admin, ORCHESTRATORS)
            bots = seeded.orchestrators
            channel_of = seeded.orchestrator_channel

            def mention(seq: int) -> dict[str, Any]:
                i = seq % len(bots)
                content = f"@{bots[i].handle} question {seq}: what is the status?"
                return {"channel_id": str(channel_of[i]), "content": content}

            def plain(seq: int) -> dict[str, Any]:
                # The floor server stores, pushes and acks it: a plain message round trip.
                return {"channel_id": str(channel_of[seq % len(bots)]), "content": f"hi {seq}"}

            probe: _Probe | None = None

            def route(event: str, data: Any) -> None:
                if probe is not None:
                    probe.on_event(event, data)

            async with support.socket_client(server.url, person, route) as sio:
                probe = _Probe(sio)  # warm-up: caches, pools, the model client
                await probe.offer(20, 1.0, mention, ack_ends=False)
                await probe.drain(drain)

            # The floor at every rate first, while the app is idle: later, a backlog of
            # mentions the app is still working through would slow the floor server too.
            floors: dict[float, _Probe] = {}
            for rate in (*STEPS[mode], *RATES[mode]):
                async with support.socket_client(floor_server.url, person, lambda *_: None) as fs:
                    floors[rate] = _Probe(fs)
                    await floors[rate].offer(rate, floor_s, plain, ack_ends=True)
                    await floors[rate].drain(drain)

            async def step(rate: float, offered: float) -> dict[str, Any]:
                nonlocal probe
                # A bisection's rate has no floor of its own: the nearest measured one.
                floor = floors[min(floors, key=lambda r: abs(r - rate))]
                # A client per rate: one the server dropped under overload stays dropped.
                async with support.socket_client(server.url, person, route) as sio:
                    ours = probe = _Probe(sio)
                    await ours.offer(rate, offered, mention, ack_ends=False)
                    await ours.drain(drain)
                # Let the backlog clear (bounded) so the next rate starts from an idle server.
                backlog = await _backlog(http, admin, drain)
                return _summary(rate, ours, floor, backlog)

            steps = []
            for rate in STEPS[mode]:
                steps.append(await step(rate, step_s))
                if steps[-1]["p99_ms"] > BEHIND_MS:
                    break
            held = [x["rate"] for x in steps if x["p99_ms"] <= SATURATED_MS]
            missed = [x["rate"] for x in steps if x["p99_ms"] > SATURATED_MS]
            if not quick and held and missed and min(missed) - max(held) > 2:
                # One bisection between the last rate that held and the first that did not.
                steps.append(await step((max(held) + min(missed)) / 2, step_s))
            for rate in RATES[mode]:
                figures += _figures(await step(rate, seconds), seconds)
                steps.append({**figures[-1].extra, "rate": rate, "p99_ms": figures[-1].value})
            figures.append(_saturation(steps))
    os.remove(log)  # kept only when a run fails
    return figures


async def _backlog(http: httpx.AsyncClient, admin: str, limit: float) -> int:
    """Wait until no mention is pending (at most `limit` s); returns how many still are."""
    deadline = time.perf_counter() + limit
    headers = {"Authorization": f"Bearer {admin}"}
    while True:
        try:
            response = await http.get("/api/admin/daemons", headers=headers)
            items = response.json()
            items = items.get("items", items) if isinstance(items, dict) else items
            pending = sum(int(d.get("pending_mentions") or 0) for d in items)
        except (httpx.HTTPError, ValueError):
            pending = -1  # the server is too busy to say: keep waiting
        if pending == 0 or time.perf_counter() > deadline:
            return max(pending, 0)
        await asyncio.sleep(0.5)


def main() -> None:
    args = support.scenario_args(__doc__ or "")
    support.emit(support.run(lambda: measure(args.quick)), args.out)


if __name__ == "__main__":
    main()
