"""What a deployer gets from `pip install`: the built wheel, installed alone into a fresh
virtual environment, migrates an empty database, serves, and answers a mention through the
real Anthropic SDK (pointed at the loopback model server) — from a directory that holds
nothing of the checkout."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.clients import bearer, login
from tests.support.model_server import ModelServer, ok
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "neolith-orchestrator"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel from the checkout and install it, with its dependencies only, into a
    new virtual environment."""
    work = tmp_path_factory.mktemp("wheel")

    def run(*command: str) -> None:
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr[-4000:]}"

    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(work / "dist"), str(ROOT))
    (wheel,) = (work / "dist").glob("neolith_orchestrator-*.whl")
    venv = work / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    run(str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel))
    yield Installed(wheel, venv)


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without our settings or the test runner's paths."""
    drop = ("ANTHROPIC_", "NEOLITH_", "DATABASE_", "PYTHON", "VIRTUAL_ENV", "OPENAI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"LOG_LEVEL": "WARNING", **extra})
    return env


def test_the_wheel_carries_every_module_the_migrations_and_the_licence(
    installed: Installed,
) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    package = ROOT / "neolith_orchestrator"
    # Every file of the package (modules, py.typed, the web app's static files) ships.
    modules = {
        p.relative_to(ROOT).as_posix()
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    migrations = {
        "neolith_orchestrator/migrations/" + p.relative_to(ROOT / "migrations").as_posix()
        for p in (ROOT / "migrations").rglob("*.py")
    }
    assert modules - names == set()
    assert migrations - names == set()
    assert "neolith_orchestrator/migrations/script.py.mako" in names
    assert "neolith_orchestrator/py.typed" in names
    licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert licence, "the wheel carries no LICENSE"
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(installed.wheel).read(metadata).decode()
    assert "License-Expression: MIT" in text
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_the_installed_package_is_not_the_checkout(installed: Installed, tmp_path: Path) -> None:
    where = subprocess.run(
        [
            str(installed.venv / "bin" / "python"),
            "-c",
            "import neolith_orchestrator as n; print(n.__file__)",
        ],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed.venv), where
    version = subprocess.run(
        [str(installed.command), "--version"],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    metadata = zipfile.ZipFile(installed.wheel).read(
        next(n for n in zipfile.ZipFile(installed.wheel).namelist() if n.endswith("METADATA"))
    )
    (declared,) = [
        line.split(":", 1)[1].strip()
        for line in metadata.decode().splitlines()
        if line.startswith("Version:")
    ]
    assert version.split() == ["neolith-orchestrator", declared]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_installed_wheel_migrates_serves_and_answers_a_mention(
    installed: Installed, tmp_path: Path
) -> None:
    env = _clean_env()
    migrate = await asyncio.create_subprocess_exec(
        str(installed.command),
        "migrate",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    migrate_out, migrate_err = await asyncio.wait_for(migrate.communicate(), 120)
    assert migrate.returncode == 0, migrate_err.decode()
    assert "up to date" in migrate_out.decode()
    database = tmp_path / "neolith-orchestrator.db"
    assert database.is_file()
    # The file's full path is said, so starting elsewhere can't silently use another one.
    assert str(database) in migrate_out.decode() + migrate_err.decode()

    port = _free_port()
    async with ModelServer() as model:
        model.default = ok("Hello from the installed wheel.", chunks=4)
        process = await asyncio.create_subprocess_exec(
            str(installed.command),
            "serve",
            "--demo",
            "--port",
            str(port),
            cwd=tmp_path,
            env={**env, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": model.url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:

                async def ready() -> bool:
                    try:
                        return (await http.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await eventually(ready, within=90)
                sam = await login(http, "sam@demo.example", "demo-person-password")
                (general,) = (await http.get("/api/channels", headers=bearer(sam))).json()
                url = f"/api/channels/{general['id']}/messages"
                posted = await http.post(
                    url, json={"content": "@ada are you installed?"}, headers=bearer(sam)
                )
                assert posted.status_code == 201, posted.text
                mention_id = posted.json()["id"]

                async def reply() -> list[dict[str, object]]:
                    items = (await http.get(url, headers=bearer(sam))).json()["items"]
                    return [m for m in items if m["reply_to_id"] == mention_id]

                (answer,) = await eventually(reply, within=30)
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = await asyncio.wait_for(process.communicate(), 60)
    assert answer["content"] == "Hello from the installed wheel."
    assert len(model.requests) == 1
    assert "are you installed?" in str(model.requests[0].body["messages"])
    assert process.returncode == 0, err.decode()
