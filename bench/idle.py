"""Idle cost: resident memory per running daemon and the time to start them all (1,000 and
10,000 daemons), and the CPU the heartbeat and health sweeps spend at 10,000 daemons with
both intervals at 1 s. Floor: the same number of bare asyncio tasks, each waiting on its
own `asyncio.Event` (and, for the sweeps, two 1-s timers that touch every one of them).

Every measurement runs in a fresh interpreter (`--child`), so RSS starts clean: the parent
seeds one database with 10,001 orchestrators and spawns the children.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import support
from bench.support import Figure

SIZES = (1_000, 10_000)
SWEEP_SIZE = 10_000
KB = 1024


# -- children ------------------------------------------------------------------------------
async def _ours(url: str, count: int, sweep_window: float) -> dict[str, Any]:
    """Start `count` daemons through the manager; RSS per daemon, start time, sweep CPU."""
    from sqlalchemy import select

    from neolith_orchestrator.ai.offline import OfflineResponder
    from neolith_orchestrator.daemons.manager import DaemonManager
    from neolith_orchestrator.daemons.status import DaemonStatus
    from neolith_orchestrator.db.engine import Database
    from neolith_orchestrator.db.models import Orchestrator
    from neolith_orchestrator.realtime.emitter import NullEmitter

    interval = 1_000 if sweep_window else 60_000
    settings = support.settings(
        url,
        instance_id="bench-idle",
        daemon_heartbeat_interval=interval,
        daemon_health_check_interval=interval,
    )
    database = Database(settings)
    async with database.transaction() as session:
        ids = list(await session.scalars(select(Orchestrator.id).order_by(Orchestrator.id)))
    warm, ids = ids[-1], ids[:count]
    manager = DaemonManager(settings)
    await manager.startup(database, NullEmitter(), OfflineResponder())
    runtime = manager.runtime
    # Warm every code path (statement caches, lazy imports) before the first reading.
    await manager.start_daemon(warm)
    await manager.stop_daemon(warm)
    await runtime.journal.flush()
    rss0 = support.rss_bytes()
    t0 = time.perf_counter()
    await asyncio.gather(*(manager.start_daemon(oid) for oid in ids))
    start_s = time.perf_counter() - t0
    running = sum(1 for d in manager.daemons() if d.status is DaemonStatus.RUNNING)
    await runtime.journal.flush()
    rss1 = support.rss_bytes()
    result: dict[str, Any] = {
        "start_s": start_s,
        "rss_per_item": (rss1 - rss0) / count,
        "running": running,
    }
    if sweep_window:
        result.update(await _sweep_cpu(manager, sweep_window))
    t1 = time.perf_counter()
    await manager.shutdown()
    result["stop_all_s"] = time.perf_counter() - t1
    await database.dispose()
    return result


async def _sweep_cpu(manager: Any, window: float) -> dict[str, Any]:
    """CPU per wall second with the sweeps running, minus the same with them stopped."""
    await asyncio.sleep(1.5)  # let both loops reach their steady beat
    with_sweeps = await _cpu_rate(window)
    reports = {k: [r.duration_ms for r in v] for k, v in manager.sweeps.history.items()}
    errors = [e for v in manager.sweeps.history.values() for r in v for e in r.errors]
    await manager.sweeps.aclose()
    without = await _cpu_rate(window)
    return {
        "cpu_with": with_sweeps,
        "cpu_without": without,
        "sweep_ms": reports,
        "sweep_errors": errors[:3],
    }


async def _cpu_rate(window: float) -> float:
    c0, t0 = support.cpu_seconds(), time.perf_counter()
    await asyncio.sleep(window)
    return (support.cpu_seconds() - c0) / (time.perf_counter() - t0)


class _Bare:
    __slots__ = ("beat", "event", "task")


async def _floor(count: int, sweep_window: float) -> dict[str, Any]:
    """The same number of bare tasks, each awaiting its own Event."""
    started = 0
    all_started = asyncio.Event()

    async def bare(item: _Bare) -> None:
        nonlocal started
        started += 1
        if started == count:
            all_started.set()
        await item.event.wait()

    def make() -> _Bare:
        item = _Bare()
        item.beat = time.monotonic()
        item.event = asyncio.Event()
        item.task = asyncio.create_task(bare(item))
        return item

    warm = make()
    await asyncio.sleep(0)
    warm.event.set()
    await warm.task
    started = 0
    all_started.clear()
    rss0 = support.rss_bytes()
    t0 = time.perf_counter()
    items = [make() for _ in range(count)]
    await all_started.wait()
    start_s = time.perf_counter() - t0
    rss1 = support.rss_bytes()
    result: dict[str, Any] = {"start_s": start_s, "rss_per_item": (rss1 - rss0) / count}
    if sweep_window:

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(1.0)
                now = time.monotonic()
                for item in items:
                    if not item.task.done():
                        item.beat = now

        async def health() -> None:
            while True:
                await asyncio.sleep(1.0)
                now = time.monotonic()
                stale = [i for i in items if i.task.done() or now - i.beat > 3.0]
                assert not stale

        loops = [asyncio.create_task(heartbeat()), asyncio.create_task(health())]
        await asyncio.sleep(1.5)
        result["cpu_with"] = await _cpu_rate(sweep_window)
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        result["cpu_without"] = await _cpu_rate(sweep_window)
    for item in items:
        item.event.set()
    await asyncio.gather(*(i.task for i in items))
    return result


# -- parent --------------------------------------------------------------------------------
def _child(kind: str, url: str, count: int, sweep_window: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.idle", "--child", kind, "--count", str(count)]
    cmd += ["--url", url, "--sweep-window", str(sweep_window)]
    done = subprocess.run(
        cmd, capture_output=True, text=True, cwd=support.ROOT, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"idle child {kind} {count} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def _seed(url: str) -> None:
    await support.seed(url, orchestrators=max(SIZES) + 1, people=0, channels=0)


def measure(quick: bool) -> list[Figure]:
    window = 3.0 if quick else 10.0
    figures: list[Figure] = []
    with _Database() as url:
        for count in SIZES:
            ours = _child("ours", url, count, 0)
            floor = _child("floor", url, count, 0)
            label = f"{count:,} daemons"
            figures.append(
                Figure(
                    "idle",
                    f"memory per idle daemon ({label})",
                    ours["rss_per_item"] / KB,
                    "KB",
                    floor=floor["rss_per_item"] / KB,
                    floor_label="bare task + Event",
                    target=("<", 5.0, "over_floor"),
                    target_text="< 5 KB above floor",
                    extra={"ours": ours, "floor": floor},
                )
            )
            figures.append(
                Figure(
                    "idle",
                    f"start all ({label})",
                    ours["start_s"] * 1000,
                    "ms",
                    floor=floor["start_s"] * 1000,
                    floor_label="create bare tasks",
                    target=("<", 2000.0, "value") if count == 10_000 else None,
                    target_text="< 2 s" if count == 10_000 else "",
                    note=f"{ours['running']}/{count} running",
                )
            )
        ours = _child("ours", url, SWEEP_SIZE, window)
        floor = _child("floor", url, SWEEP_SIZE, window)
        sweep_cpu = ours["cpu_with"] - ours["cpu_without"]
        floor_cpu = floor["cpu_with"] - floor["cpu_without"]
        ms = ours["sweep_ms"]
        note = "sweep ms heartbeat p50 {:.1f}, health p50 {:.1f}".format(
            support.median(ms["heartbeat"]) if ms["heartbeat"] else float("nan"),
            support.median(ms["health"]) if ms["health"] else float("nan"),
        )
        if support.backend() == "postgresql":
            note += "; PostgreSQL's own CPU not included"
        figures.append(
            Figure(
                "idle",
                f"sweeps CPU ({SWEEP_SIZE:,} daemons, 1 s intervals)",
                sweep_cpu * 100,
                "% core",
                floor=floor_cpu * 100,
                floor_label="2 timers over bare tasks",
                target=("<", 2.0, "value"),
                target_text="< 2 % of a core",
                note=note,
                extra={"ours": ours, "floor": floor},
            )
        )
    return figures


class _Database:
    """The scratch database of the parent, seeded once, as a plain context manager."""

    def __enter__(self) -> str:
        self._cm = support.scratch_database("idle")
        self._loop = asyncio.new_event_loop()
        url: str = self._loop.run_until_complete(self._cm.__aenter__())
        self._loop.run_until_complete(_seed(url))
        return url

    def __exit__(self, *exc: object) -> None:
        self._loop.run_until_complete(self._cm.__aexit__(None, None, None))
        self._loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", choices=["ours", "floor"])
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--url", default="")
    parser.add_argument("--sweep-window", type=float, default=0.0)
    args = parser.parse_args()
    if args.child == "ours":
        print(json.dumps(support.run(lambda: _ours(args.url, args.count, args.sweep_window))))
    elif args.child == "floor":
        print(json.dumps(support.run(lambda: _floor(args.count, args.sweep_window))))
    else:
        support.emit(measure(args.quick), args.out)


if __name__ == "__main__":
    main()
