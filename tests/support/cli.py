"""Run the `neolith-orchestrator` command as a real process, as an operator would."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Result:
    code: int
    out: str
    err: str


def cli_env(database_url: str | None, **extra: str) -> dict[str, str]:
    """The environment without our settings or secrets, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("ANTHROPIC_", "OPENAI_", "NEOLITH_", "LOG_", "DATABASE_", "HOST", "PORT")
        )
    }
    env.update({"ORCHESTRATOR_MODE": "test", "LOG_LEVEL": "WARNING", **extra})
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


async def start_cli(
    *args: str, cwd: Path, database_url: str | None = None, stdin: Any = None, **env: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "neolith_orchestrator.cli",
        *args,
        cwd=cwd,
        env=cli_env(database_url, **env),
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def cli(
    *args: str, cwd: Path, database_url: str | None = None, input: str | None = None, **env: str
) -> Result:
    """Run one command to its end; `input` is written to its stdin."""
    process = await start_cli(
        *args,
        cwd=cwd,
        database_url=database_url,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        **env,
    )
    data = input.encode() if input is not None else None
    out, err = await asyncio.wait_for(process.communicate(data), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_in_terminal(
    *args: str, cwd: Path, database_url: str | None, answers: list[str], **env: str
) -> Result:
    """Run a command with a pseudo-terminal as its controlling terminal and stdin (what
    `getpass` reads), typing each answer once the command has asked (a prompt ends with
    ": "). Blocking: call it through `asyncio.to_thread`."""
    import fcntl
    import pty
    import select
    import subprocess
    import termios

    controller, terminal = pty.openpty()

    def take_terminal() -> None:  # in the child, after setsid(): make it ours
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "-m", "neolith_orchestrator.cli", *args],
        cwd=cwd,
        env=cli_env(database_url, **env),
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=take_terminal,
    )
    os.close(terminal)
    shown = ""
    try:
        for answer in answers:
            while not shown.rstrip(" ").endswith(":"):
                ready, _, _ = select.select([controller], [], [], 30)
                assert ready, f"no prompt within 30 s; the terminal shows {shown!r}"
                shown += os.read(controller, 1024).decode()
            shown = ""
            os.write(controller, answer.encode() + b"\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()
    return Result(process.returncode, out.decode(), err.decode())
