"""What every scenario shares: an event loop, a scratch database, seeded accounts, the
server in a subprocess, resident memory and CPU readings, percentiles, and the figure
record each scenario hands back to `bench.report`.

Each scenario module runs as its own process (`python -m bench.<name> --out FILE`), so
its memory readings start from a fresh interpreter. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench password 1"
# Every figure gets one of these: the bench never asserts, it records.
LOWER, HIGHER = "lower", "higher"


# -- figures -------------------------------------------------------------------------------
@dataclass
class Figure:
    """One measured number, its floor from the same run, and the target it works towards.

    `ratio` is value/floor. `better` says which direction is good. `target` is a
    (comparison, number, basis) triple where basis is "value", "over_floor" (value minus
    floor) or "ratio"; `met` is filled in by `judge`.
    """

    scenario: str
    name: str
    value: float | None
    unit: str
    floor: float | None = None
    floor_label: str = ""
    better: str = LOWER
    target: tuple[str, float, str] | None = None
    target_text: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.floor:
            return None
        return self.value / self.floor

    def judge(self) -> Figure:
        if self.target is None or self.value is None:
            return self
        op, limit, basis = self.target
        if basis == "over_floor":
            if self.floor is None:
                return self
            subject = self.value - self.floor
        elif basis == "ratio":
            ratio = self.ratio
            if ratio is None:
                return self
            subject = ratio
        else:
            subject = self.value
        self.met = subject < limit if op == "<" else subject >= limit
        return self

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        for key in ("value", "floor"):
            if isinstance(data[key], float):
                data[key] = _round(data[key])
        data["target"] = list(self.target) if self.target else None
        for key in ("value", "floor", "ratio"):
            if isinstance(data[key], float) and not math.isfinite(data[key]):
                data[key] = None  # strict JSON; `unanswered` says why
                data["unanswered"] = True
        return data


def _round(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    digits = max(0, 4 - math.floor(math.log10(abs(value))))
    return round(value, digits)


# -- running a scenario --------------------------------------------------------------------
def scenario_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer samples")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    return parser.parse_args()


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run `main` on uvloop when it is installed (uvicorn serves the app on it too)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(main())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def emit(figures: Sequence[Figure], out: Path | None) -> None:
    """Hand the figures back to the runner (or print them when run on its own)."""
    data = [f.judge().as_dict() for f in figures]
    if out is None:
        print(json.dumps(data, indent=2))
    else:
        out.write_text(json.dumps(data))


# -- readings ------------------------------------------------------------------------------
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes() -> int:
    """Resident set size now, after a full collection (from /proc/self/statm)."""
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def cpu_seconds() -> float:
    """CPU time of this process, all threads (the aiosqlite thread included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; +inf stands for a sample that never arrived."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


# -- databases -----------------------------------------------------------------------------
def backend() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return "postgresql" if url.startswith(("postgres", "postgresql")) else "sqlite"


@asynccontextmanager
async def scratch_database(tag: str) -> AsyncIterator[str]:
    """A freshly migrated, empty database for one scenario: a temp SQLite file by default,
    or a new database on the PostgreSQL server of DATABASE_URL (dropped afterwards)."""
    from neolith_orchestrator.db import migrate
    from neolith_orchestrator.db.engine import Database

    base = os.environ.get("DATABASE_URL")
    if backend() == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"neolith-bench-{tag}-"))
        url = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
        cleanup: Callable[[], Coroutine[Any, Any, None]] | None = None

        async def remove() -> None:
            shutil.rmtree(folder, ignore_errors=True)

        cleanup = remove
    else:
        import asyncpg
        from sqlalchemy.engine import make_url

        assert base is not None
        parsed = make_url(base).set(drivername="postgresql+asyncpg")
        name = f"bench_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin_dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url = parsed.set(database=name).render_as_string(hide_password=False)

        async def drop() -> None:
            conn = await asyncpg.connect(admin_dsn)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()

        cleanup = drop
    database = Database(settings(url))
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()
    try:
        yield url
    finally:
        await cleanup()


def settings(database_url: str, **overrides: Any) -> Any:
    """Settings for the bench: never read `.env.orchestrator`; only what is given here."""
    from neolith_orchestrator.config import Settings

    base: dict[str, Any] = {
        "database_url": database_url,
        "anthropic_api_key": None,
        "anthropic_base_url": None,
        "orchestrator_mode": "production",
        "log_level": "WARNING",
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


# -- seeding -------------------------------------------------------------------------------
@dataclass
class Account:
    email: str
    user_id: uuid.UUID
    handle: str
    orchestrator_id: uuid.UUID | None = None


@dataclass
class Seeded:
    org_id: uuid.UUID
    admin: Account
    people: list[Account]
    orchestrators: list[Account]
    channels: list[uuid.UUID]
    # channel of each orchestrator (by index) and the channels of each person
    orchestrator_channel: list[uuid.UUID]


def cheap_hash() -> str:
    """An argon2 hash with small parameters: a login still verifies a real hash, without
    spending a third of a second of CPU per account on bench set-up."""
    import argon2

    return argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)


async def seed(
    database_url: str,
    *,
    orchestrators: int,
    people: int = 1,
    channels: int = 1,
    people_everywhere: bool = False,
    slug: str = "bench",
) -> Seeded:
    """One organization: an admin, `people` persons, `orchestrators` orchestrators and
    `channels` channels. Orchestrator i joins channel i % channels; person j joins channel
    j % channels, or every channel with `people_everywhere`. Written in bulk statements."""
    from sqlalchemy import insert

    from neolith_orchestrator.db.engine import Database
    from neolith_orchestrator.db.models import (
        Channel,
        ChannelMember,
        Orchestrator,
        Organization,
        User,
    )
    from neolith_orchestrator.db.types import utcnow
    from neolith_orchestrator.ids import new_id

    password_hash = cheap_hash()
    now = utcnow()
    org_id = new_id()
    users: list[dict[str, Any]] = []
    orch_rows: list[dict[str, Any]] = []

    def user(handle: str, *, admin: bool = False, orchestrator: bool = False) -> Account:
        account = Account(f"{handle}@{slug}.test", new_id(), handle)
        users.append(
            {
                "id": account.user_id,
                "organization_id": org_id,
                "email": account.email,
                "name": handle.title(),
                "handle": handle,
                "password_hash": password_hash,
                "is_orchestrator": orchestrator,
                "is_admin": admin,
                "orchestrator_config": (
                    {"name": handle.title(), "role": "Engineer", "mission": "Help."}
                    if orchestrator
                    else None
                ),
                "created_at": now,
            }
        )
        if orchestrator:
            account.orchestrator_id = new_id()
            orch_rows.append(
                {
                    "id": account.orchestrator_id,
                    "user_id": account.user_id,
                    "organization_id": org_id,
                    "discipline": "",
                    "role": "Engineer",
                    "capabilities": [],
                    "status": "OFFLINE",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        return account

    admin = user("admin", admin=True)
    persons = [user(f"person{j}") for j in range(people)]
    bots = [user(f"bot{i}", orchestrator=True) for i in range(orchestrators)]
    channel_ids = [new_id() for _ in range(channels)]
    members: list[dict[str, Any]] = []

    def join(channel_id: uuid.UUID, account: Account) -> None:
        members.append(
            {
                "channel_id": channel_id,
                "user_id": account.user_id,
                "organization_id": org_id,
                "joined_at": now,
            }
        )

    for channel_id in channel_ids:
        join(channel_id, admin)
    for j, person in enumerate(persons):
        for channel_id in channel_ids if people_everywhere else [channel_ids[j % channels]]:
            join(channel_id, person)
    placement = [channel_ids[i % channels] for i in range(orchestrators)] if channels else []
    for bot, channel_id in zip(bots, placement, strict=False):
        join(channel_id, bot)

    database = Database(settings(database_url))
    try:
        async with database.transaction() as session:
            await session.execute(
                insert(Organization), [{"id": org_id, "slug": slug, "name": slug.title()}]
            )
            for chunk in _chunks(users, 2_000):
                await session.execute(insert(User), chunk)
            for chunk in _chunks(orch_rows, 2_000):
                await session.execute(insert(Orchestrator), chunk)
            if channel_ids:
                await session.execute(
                    insert(Channel),
                    [
                        {
                            "id": cid,
                            "organization_id": org_id,
                            "name": f"room-{n}",
                            "topic": "",
                            "created_by": admin.user_id,
                            "created_at": now,
                        }
                        for n, cid in enumerate(channel_ids)
                    ],
                )
            for chunk in _chunks(members, 2_000):
                await session.execute(insert(ChannelMember), chunk)
    finally:
        await database.dispose()
    return Seeded(org_id, admin, persons, bots, channel_ids, placement)


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


# -- the server in a subprocess ------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, **settings_env: Any) -> dict[str, str]:
    """The environment of a server process: the bench's settings as variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAEMON_", "ANTHROPIC_"))}
    env.update(
        DATABASE_URL=database_url,
        ORCHESTRATOR_MODE="production",
        LOG_LEVEL="WARNING",
        INSTANCE_ID="bench-server",
        # Replies still running at the end of a scenario are not measured: stop quickly.
        DAEMON_STOP_GRACE="2000",
        PYTHONPATH=str(ROOT),
    )
    env.update({k.upper(): str(v) for k, v in settings_env.items()})
    return env


class ServerProcess:
    """`python -m bench.serve` (create_app under uvicorn) on a loopback port, or with
    `module="bench.floor_server"` the hand-written floor server."""

    def __init__(self, env: dict[str, str], log: Path, module: str = "bench.serve") -> None:
        self.env = env
        self.log = log
        self.module = module
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, limit: float = 60.0) -> float:
        """Spawn it and wait until /readyz answers 200; returns the seconds that took."""
        import httpx

        t0 = time.perf_counter()
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                "--port",
                str(self.port),
                env=self.env,
                cwd=str(ROOT),
                stdout=log,
                stderr=log,
            )
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as http:
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"the server exited at start-up; see {self.log}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/readyz")).status_code == 200:
                        return time.perf_counter() - t0
                if time.perf_counter() - t0 > limit:
                    raise RuntimeError(f"the server was not ready within {limit} s")
                await asyncio.sleep(0.01)

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def wait(self) -> None:
        if self.process is not None:
            await self.process.wait()

    async def stop(self, grace: float = 30.0) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            process.kill()
            await process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system, all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    async def __aenter__(self) -> ServerProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def login(http: Any, email: str) -> str:
    response = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    if response.status_code != 200:
        raise RuntimeError(f"login {email}: {response.status_code} {response.text}")
    return str(response.json()["token"])


async def login_all(http: Any, emails: Sequence[str], concurrency: int = 8) -> list[str]:
    gate = asyncio.Semaphore(concurrency)

    async def one(email: str) -> str:
        async with gate:
            return await login(http, email)

    return list(await asyncio.gather(*(one(e) for e in emails)))


async def wait_running(http: Any, admin_token: str, count: int, limit: float = 60.0) -> None:
    """Until the admin view shows `count` daemons running."""
    deadline = time.monotonic() + limit
    headers = {"Authorization": f"Bearer {admin_token}"}
    while True:
        response = await http.get("/api/admin/daemons", headers=headers)
        items = response.json()
        items = items.get("items", items) if isinstance(items, dict) else items
        running = sum(1 for d in items if d.get("status") == "running")
        if running >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {running}/{count} daemons running after {limit} s")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def socket_client(url: str, token: str, on_event: Callable[[str, Any], None]) -> Any:
    """A python-socketio client over WebSocket; every pushed event goes to `on_event`."""
    import socketio

    sio = socketio.AsyncClient(reconnection=False)

    async def record(event: str, data: Any = None) -> None:
        on_event(event, data)

    sio.on("*", record)
    await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=30)
    try:
        yield sio
    finally:
        await sio.disconnect()
        with contextlib.suppress(Exception):
            await sio.shutdown()
