"""Several real `serve` processes on one database and one Redis: the cluster the tests run.

Each instance is `python -m neolith_orchestrator.cli serve` in its own process, with its own
`INSTANCE_ID` and loopback port, started in an empty directory (no `.env.orchestrator`) with
the test settings in its environment; its log goes to a file the test can read. `stop`
sends SIGTERM and waits for the graceful exit; `kill` is the instance dying (SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.waiting import eventually

# Fast sweeps, as in the in-process e2e tests.
FAST_ENV = {
    "DAEMON_HEARTBEAT_INTERVAL": "200",
    "DAEMON_HEALTH_CHECK_INTERVAL": "400",
    "DAEMON_STOP_GRACE": "5000",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Instance:
    """One running `serve` process and an HTTP client pointed at it."""

    instance_id: str
    port: int
    log: Path
    process: asyncio.subprocess.Process
    http: httpx.AsyncClient

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    async def ready(self) -> bool:
        try:
            return (await self.http.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    async def stop(self) -> int:
        """SIGTERM, then wait for the graceful exit; returns the exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 60)

    async def kill(self) -> None:
        """The instance dies at once: SIGKILL, no shutdown."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


@dataclass
class Cluster:
    """Instances on one database and one Redis; `start` adds one, all stop at the end."""

    database_url: str
    redis_url: str | None
    directory: Path
    env: dict[str, str] = field(default_factory=dict)
    instances: list[Instance] = field(default_factory=list)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    def _environment(self, instance_id: str, port: int, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "NEOLITH_"))}
        env.update(
            {
                "ORCHESTRATOR_MODE": "test",
                "LOG_LEVEL": "WARNING",
                "DATABASE_URL": self.database_url,
                "INSTANCE_ID": instance_id,
                "HOST": "127.0.0.1",
                "PORT": str(port),
                "REDIS_URL": self.redis_url or "",
                **FAST_ENV,
                **self.env,
                **extra,
            }
        )
        return env

    async def start(self, instance_id: str, **extra: str) -> Instance:
        """Start one more instance and wait until it is ready; `REDIS_URL=""` runs it
        without Redis."""
        port = _free_port()
        log = self.directory / f"{instance_id}.log"
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "neolith_orchestrator.cli",
                "serve",
                cwd=self.directory,
                env=self._environment(instance_id, port, extra),
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
        instance = Instance(instance_id, port, log, process, http)
        self.instances.append(instance)
        self._stack.push_async_callback(self._finish, instance)

        async def ready() -> bool:
            if process.returncode is not None:
                raise AssertionError(f"{instance_id} exited: {instance.log_text()}")
            return await instance.ready()

        await eventually(ready, within=60, interval=0.1)
        return instance

    async def _finish(self, instance: Instance) -> None:
        try:
            if instance.process.returncode is None:
                await instance.stop()
        finally:
            await instance.http.aclose()

    async def aclose(self) -> None:
        await self._stack.aclose()


@asynccontextmanager
async def cluster(
    database_url: str, redis_url: str | None, directory: Path, **env: str
) -> AsyncIterator[Cluster]:
    """A cluster with no instance yet: start them with `Cluster.start`. On exit every
    instance still running is stopped (SIGTERM) and must have exited cleanly."""
    running = Cluster(database_url, redis_url, directory, env)
    try:
        yield running
    finally:
        await running.aclose()
    for instance in running.instances:
        code = instance.process.returncode
        assert code in (0, -signal.SIGKILL), f"{instance.instance_id} exited {code}"
