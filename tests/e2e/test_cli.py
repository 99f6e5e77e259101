"""The `neolith-orchestrator` command, run as a real process: usage and exit codes, the
admin commands on a real database, `status` against a running server, and `serve --demo`
answering a mention end to end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.e2e.clients import bearer, login
from tests.e2e.conftest import e2e_settings, running
from tests.support.seed import PASSWORD, Org
from tests.support.waiting import eventually


@dataclass
class Result:
    code: int
    out: str
    err: str


def _env(database_url: str | None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "NEOLITH_"))
    }
    env.update({"ORCHESTRATOR_MODE": "test", "LOG_LEVEL": "WARNING", **extra})
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


async def cli(*args: str, cwd: Path, database_url: str | None = None, **env: str) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "neolith_orchestrator.cli",
        *args,
        cwd=cwd,
        env=_env(database_url, **env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())


async def test_help_and_usage_errors(tmp_path: Path) -> None:
    helped = await cli("--help", cwd=tmp_path)
    assert helped.code == 0
    for command in ("serve", "migrate", "create-org", "create-user", "demo", "status"):
        assert command in helped.out
    serve_help = await cli("serve", "--help", cwd=tmp_path)
    assert "--demo" in serve_help.out and "--port" in serve_help.out
    for args in (
        (),
        ("frobnicate",),
        ("create-user", "--org", "acme"),
        (
            "create-user",
            "--org",
            "a",
            "--email",
            "e@a.io",
            "--name",
            "N",
            "--password",
            "p" * 8,
            "--orchestrator",
        ),
        ("serve", "--port", "eighty"),
        ("status",),
    ):
        result = await cli(*args, cwd=tmp_path)
        assert result.code == 2, (args, result)
        assert "usage:" in result.err


async def test_invalid_settings_exit_1_naming_the_variable(tmp_path: Path) -> None:
    for command in ("migrate", "serve"):
        result = await cli(command, cwd=tmp_path, DAEMON_MAX_RESTART_ATTEMPTS="-1")
        assert result.code == 1
        assert "DAEMON_MAX_RESTART_ATTEMPTS" in result.err
        assert "Traceback" not in result.err


async def test_admin_commands_on_a_real_database(tmp_path: Path, database_url: str) -> None:
    run = {"cwd": tmp_path, "database_url": database_url}
    assert (await cli("migrate", **run)).code == 0
    created = await cli("create-org", "initech", "--name", "Initech", **run)
    assert created.code == 0 and "initech" in created.out
    again = await cli("create-org", "initech", **run)
    assert again.code == 1 and "already exists" in again.err
    person = await cli(
        "create-user",
        "--org",
        "initech",
        "--email",
        "peter@initech.test",
        "--name",
        "Peter",
        "--password",
        PASSWORD,
        "--admin",
        **run,
    )
    assert person.code == 0 and "@peter" in person.out
    charter = tmp_path / "charter.json"
    charter.write_text(json.dumps({"role": "TPS auditor", "mission": "Cover sheets."}))
    bot = await cli(
        "create-user",
        "--org",
        "initech",
        "--email",
        "bob@initech.test",
        "--name",
        "Bob",
        "--password",
        PASSWORD,
        "--handle",
        "bob",
        "--orchestrator",
        "--charter",
        str(charter),
        **run,
    )
    assert bot.code == 0 and "orchestrator id" in bot.out
    charter.write_text("{broken")
    broken = await cli(
        "create-user",
        "--org",
        "initech",
        "--email",
        "x@initech.test",
        "--name",
        "X",
        "--password",
        PASSWORD,
        "--orchestrator",
        "--charter",
        str(charter),
        **run,
    )
    assert broken.code == 1 and "not valid JSON" in broken.err
    missing_org = await cli(
        "create-user",
        "--org",
        "nowhere",
        "--email",
        "y@initech.test",
        "--name",
        "Y",
        "--password",
        PASSWORD,
        **run,
    )
    assert missing_org.code == 1 and "not found" in missing_org.err
    first, second = await cli("demo", **run), await cli("demo", **run)
    assert first.code == second.code == 0
    assert first.out == second.out
    assert "ada@demo.example" in first.out and "password:" in first.out


async def test_status_shows_the_daemons_of_a_running_server(
    tmp_path: Path, database_url: str, acme: Org
) -> None:
    async with running(e2e_settings(database_url)) as live:
        await login(live.http, "ada@acme.test")
        shown = await cli(
            "status",
            "--url",
            live.url,
            "--email",
            "admin@acme.test",
            "--password",
            PASSWORD,
            cwd=tmp_path,
        )
        assert shown.code == 0, shown.err
        header, row = shown.out.splitlines()
        assert header.split()[:3] == ["HANDLE", "NAME", "STATUS"]
        assert row.split()[:3] == ["@ada", "Ada", "running"]
        from_env = await cli(
            "status",
            "--url",
            live.url,
            cwd=tmp_path,
            NEOLITH_ADMIN_EMAIL="admin@acme.test",
            NEOLITH_ADMIN_PASSWORD=PASSWORD,
        )
        assert from_env.code == 0
        assert from_env.out.splitlines()[1].split()[:3] == ["@ada", "Ada", "running"]
        refused = await cli(
            "status",
            "--url",
            live.url,
            "--email",
            "admin@acme.test",
            "--password",
            "nope",
            cwd=tmp_path,
        )
        assert refused.code == 1 and "login failed (401)" in refused.err
        not_admin = await cli(
            "status",
            "--url",
            live.url,
            "--email",
            "pat@acme.test",
            "--password",
            PASSWORD,
            cwd=tmp_path,
        )
        assert not_admin.code == 1 and "403" in not_admin.err
    gone = await cli(
        "status",
        "--url",
        live.url,
        "--email",
        "admin@acme.test",
        "--password",
        PASSWORD,
        cwd=tmp_path,
    )
    assert gone.code == 1 and "cannot reach" in gone.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_demo_answers_a_mention_and_stops_cleanly(
    tmp_path: Path, database_url: str
) -> None:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "neolith_orchestrator.cli",
        "serve",
        "--demo",
        "--port",
        str(port),
        cwd=tmp_path,
        env=_env(database_url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, within=60)
            # No one logs ada in: the demo server starts with its daemon online.
            sam = await login(http, "sam@demo.example", "demo-person-password")
            (general,) = (await http.get("/api/channels", headers=bearer(sam))).json()
            url = f"/api/channels/{general['id']}/messages"
            posted = await http.post(url, json={"content": "@ada hi!"}, headers=bearer(sam))
            mention_id = posted.json()["id"]

            async def answered() -> bool:
                items = (await http.get(url, headers=bearer(sam))).json()["items"]
                return any(m["reply_to_id"] == mention_id for m in items)

            await eventually(answered)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "sam@demo.example" in out.decode()
    assert "@ada is logged in" in out.decode()
