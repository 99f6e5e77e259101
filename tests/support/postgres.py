"""A throwaway PostgreSQL server for the test suite and the benchmarks.

PostgreSQL refuses to run as root, so as root the cluster is created and run as the
`postgres` system user. The server listens on a free loopback port and is removed on stop.
`halt()` and `start()` take it down and bring it back on the same port with the same data,
as a restart of a production database would (the outage tests).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def find_bin_dir() -> Path:
    if env := os.environ.get("PG_BIN"):
        return Path(env)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install the 'postgresql' package "
        "(scripts/test.sh does) or set PG_BIN"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    bin_dir: Path
    data_dir: Path
    port: int
    _as_postgres: bool

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if self._as_postgres else cmd

    @property
    def _options(self) -> str:
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir.parent} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=400"
        )

    def start(self) -> None:
        """Start the server (again) on its port and data directory; return once it accepts
        connections."""
        log = self.data_dir.parent / "log"
        subprocess.run(
            self._cmd(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-o",
                self._options,
                "-l",
                str(log),
                "-w",
                "start",
            ),
            capture_output=True,
            check=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.accepting():
                return
            time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not become ready within 30 s")

    def accepting(self) -> bool:
        ready = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True,
            check=False,
        )
        return ready.returncode == 0

    def halt(self, mode: str = "fast") -> None:
        """Stop the server and keep its data: clients are disconnected (`fast`, as a
        restart does) and new connections are refused until `start()`."""
        subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop"),
            capture_output=True,
            check=True,
        )

    def stop(self) -> None:
        """Stop the server and remove it with its data."""
        subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb + start a server tuned for tests (no fsync), return once it accepts connections."""
    bin_dir = find_bin_dir()
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="neolith-pg-"))
    data_dir = root / "data"
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
        os.chmod(root, 0o700)
    server = PostgresServer(bin_dir, data_dir, _free_port(), as_postgres)
    subprocess.run(
        server._cmd("initdb", "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
        capture_output=True,
        check=True,
    )
    try:
        server.start()
    except Exception:
        server.stop()
        raise
    return server
