"""Recovery.

Crash: inside one process, a manager on a real database with a reply generator that raises
a connection error for the mention it is given (a failure of the surroundings: a reply's own
error is its job's and no longer ends the worker): the daemon's worker dies, the manager
restarts it. Timed from the raise to `daemon:restarted` (the daemon RUNNING again), and on to the
mention answered by the new worker. One crash per orchestrator (the first restart in a
window is immediate by policy; later ones back off on purpose). Floor: a bare asyncio
supervisor — a task that raises, a done-callback that starts a new one.

Killed process: the server runs in a subprocess with 5 orchestrators logged in; mentions
are posted while the model server holds every reply in flight; the process gets SIGKILL
and is started again on the same database. Timed from the kill until every mention has
its reply (read over HTTP). Floor: a cold start of a bare uvicorn + Starlette app in a
fresh interpreter until its first response.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench import support
from bench.support import Figure

BOTS = 5
MENTIONS_PER_BOT = 4


# -- crash ---------------------------------------------------------------------------------
class _Crashing:
    """A reply generator that raises once for each orchestrator it is armed for."""

    name = "bench"

    def __init__(self) -> None:
        self.armed: set[uuid.UUID] = set()
        self.raised_at: dict[uuid.UUID, float] = {}

    async def generate(self, request: Any, sink: Any) -> Any:
        from neolith_orchestrator.ai.generator import ReplyResult

        oid = request.orchestrator_id
        if oid in self.armed:
            self.armed.discard(oid)
            self.raised_at[oid] = time.perf_counter()
            raise ConnectionResetError("injected crash")
        await sink.delta("recovered")
        return ReplyResult(
            text="recovered",
            model="bench",
            stop_reason="end_turn",
            usage={"input_tokens": 1, "output_tokens": 1},
        )

    async def aclose(self) -> None:
        return None


async def _crashes(samples: int) -> dict[str, list[float]]:
    from neolith_orchestrator.daemons.manager import DaemonManager
    from neolith_orchestrator.db.engine import Database
    from neolith_orchestrator.db.models import User
    from neolith_orchestrator.realtime.emitter import RecordingEmitter

    async with support.scratch_database("recovery") as url:
        seeded = await support.seed(url, orchestrators=samples, people=1, channels=1)
        # Every reply lands in one channel: the per-channel fair-use limit (20 a minute by
        # default) would defer the later ones, and that is not what we time.
        settings = support.settings(
            url, instance_id="bench-recovery", mention_replies_per_channel_per_minute=1_000_000
        )
        database = Database(settings)
        emitter = RecordingEmitter()
        generator = _Crashing()
        manager = DaemonManager(settings)
        await manager.startup(database, emitter, generator)  # type: ignore[arg-type]
        restarted: dict[str, float] = {}
        answered: dict[str, float] = {}
        signal = asyncio.Event()

        def on_restart(payload: dict[str, Any]) -> None:
            restarted[payload["orchestrator_id"]] = time.perf_counter()
            signal.set()

        def on_processed(payload: dict[str, Any]) -> None:
            answered[payload["orchestrator_id"]] = time.perf_counter()
            signal.set()

        manager.on("daemon:restarted", on_restart)
        manager.on("daemon:message-processed", on_processed)
        try:
            async with database.transaction() as session:
                person = await session.get(User, seeded.people[0].user_id)
            assert person is not None
            for bot in seeded.orchestrators:
                await manager.start_daemon(bot.orchestrator_id)
            channel = seeded.channels[0]
            restart_s, answer_s = [], []
            for bot in seeded.orchestrators:
                oid = bot.orchestrator_id
                assert oid is not None
                generator.armed.add(oid)
                await manager.messenger.post(person, channel, f"@{bot.handle} please crash")
                async with asyncio.timeout(30):
                    while str(oid) not in answered:
                        signal.clear()
                        await signal.wait()
                raised = generator.raised_at[oid]
                restart_s.append(restarted[str(oid)] - raised)
                answer_s.append(answered[str(oid)] - raised)
        finally:
            await manager.shutdown()
            await database.dispose()
    return {"restart": restart_s, "answer": answer_s}


async def _bare_crashes(samples: int) -> list[float]:
    """The floor: raise in a task; a done-callback starts the next; time until it runs."""
    out = []
    for _ in range(samples):
        loop = asyncio.get_running_loop()
        running: asyncio.Future[float] = loop.create_future()
        raised = 0.0

        async def worker(first: bool, running: asyncio.Future[float] = running) -> None:
            nonlocal raised
            if first:
                raised = time.perf_counter()
                raise RuntimeError("injected crash")
            running.set_result(time.perf_counter())

        tasks: list[asyncio.Task[None]] = []

        def supervise(task: asyncio.Task[None], tasks: list[asyncio.Task[None]] = tasks) -> None:
            if not task.cancelled() and task.exception() is not None:
                tasks.append(asyncio.create_task(worker(False)))

        first = asyncio.create_task(worker(True))
        first.add_done_callback(supervise)
        out.append(await running - raised)
        await asyncio.gather(first, *tasks, return_exceptions=True)
    return out


# -- killed process ------------------------------------------------------------------------
async def _killed(rounds: int) -> dict[str, list[float]]:
    from tests.support.model_server import ModelServer, Ok

    log = Path(tempfile.mkstemp(prefix="neolith-bench-recovery-", suffix=".log")[1])
    answered_s, ready_s = [], []
    async with support.scratch_database("killed") as url, ModelServer() as model:
        seeded = await support.seed(url, orchestrators=BOTS, people=1, channels=1)
        env = support.server_env(
            url,
            anthropic_api_key="bench-key",
            anthropic_base_url=model.url,
            mention_replies_per_channel_per_minute=1_000_000,
        )
        channel = seeded.channels[0]
        # Replies in flight at the kill: one per daemon, within the organization's model cap.
        held = min(BOTS, _setting_default("model_max_concurrency_per_org"))
        server = support.ServerProcess(env, log)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                await support.login_all(http, [o.email for o in seeded.orchestrators])
                admin = await support.login(http, seeded.admin.email)
                person = await support.login(http, seeded.people[0].email)
                await support.wait_running(http, admin, BOTS)
            for _ in range(rounds):
                model.default = Ok(delay=30.0)  # hold every reply in flight
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                    mentions = await _post_mentions(http, person, channel, seeded)
                    async with asyncio.timeout(30):
                        while model.in_flight < held:  # noqa: ASYNC110
                            await asyncio.sleep(0.01)
                killed = time.perf_counter()
                server.kill()
                await server.wait()
                model.default = Ok()  # answers at once from now on
                server = support.ServerProcess(env, log)
                await server.start()
                ready_s.append(time.perf_counter() - killed)
                async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                    await _until_answered(http, person, channel, mentions)
                answered_s.append(time.perf_counter() - killed)
        finally:
            await server.stop()
    os.remove(log)  # kept only when a run fails
    return {"answered": answered_s, "ready": ready_s}


def _setting_default(name: str) -> Any:
    from neolith_orchestrator.config import Settings

    return Settings.model_fields[name].default


async def _post_mentions(
    http: httpx.AsyncClient, token: str, channel: uuid.UUID, seeded: support.Seeded
) -> set[str]:
    headers = {"Authorization": f"Bearer {token}"}
    ids = set()
    for n in range(MENTIONS_PER_BOT):
        for bot in seeded.orchestrators:
            response = await http.post(
                f"/api/channels/{channel}/messages",
                json={"content": f"@{bot.handle} pending question {n}"},
                headers=headers,
            )
            response.raise_for_status()
            ids.add(response.json()["id"])
    return ids


async def _until_answered(
    http: httpx.AsyncClient, token: str, channel: uuid.UUID, mentions: set[str]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with asyncio.timeout(120):
        while True:
            page = await http.get(
                f"/api/channels/{channel}/messages", params={"limit": 200}, headers=headers
            )
            replied = {m["reply_to_id"] for m in page.json()["items"] if m["reply_to_id"]}
            if mentions <= replied:
                return
            await asyncio.sleep(0.02)


async def _bare_server_start() -> float:
    """Spawn a fresh interpreter serving a bare Starlette app; seconds to its first 200."""
    port = support.free_port()
    t0 = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.recovery",
        "--bare-server",
        str(port),
        cwd=str(support.ROOT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=2) as http, asyncio.timeout(60):
            while True:
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/")).status_code == 200:
                        return time.perf_counter() - t0
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.01)
    finally:
        process.terminate()
        await process.wait()


def _serve_bare(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def ok(_request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/", ok)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- figures -------------------------------------------------------------------------------
async def measure(quick: bool) -> list[Figure]:
    samples, rounds = (10, 1) if quick else (30, 3)
    crashes = await _crashes(samples)
    bare = await _bare_crashes(samples)
    killed = await _killed(rounds)
    bare_starts = [await _bare_server_start() for _ in range(rounds)]
    ms = 1000.0
    restart = [x * ms for x in crashes["restart"]]
    floor = [x * ms for x in bare]
    return [
        Figure(
            "recovery",
            "crash → running again (p50)",
            support.median(restart),
            "ms",
            floor=support.median(floor),
            floor_label="bare asyncio restart",
            target=("<", 100.0, "value"),
            target_text="< 100 ms",
            note=f"{samples} crashes; max {max(restart):.1f} ms",
        ),
        Figure(
            "recovery",
            "crash → mention answered (p50)",
            support.median([x * ms for x in crashes["answer"]]),
            "ms",
            floor=support.median(floor),
            floor_label="bare asyncio restart",
        ),
        Figure(
            "recovery",
            f"SIGKILL → all {BOTS * MENTIONS_PER_BOT} pending mentions answered",
            support.median(killed["answered"]) * ms,
            "ms",
            floor=support.median(bare_starts) * ms,
            floor_label="bare uvicorn cold start",
            note=(
                f"median of {rounds}; server ready again after "
                f"{support.median(killed['ready']) * ms:.0f} ms"
            ),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--bare-server", type=int, default=0)
    args = parser.parse_args()
    if args.bare_server:
        _serve_bare(args.bare_server)
        return
    support.emit(support.run(lambda: measure(args.quick)), args.out)


if __name__ == "__main__":
    main()
