"""The operator's commands, run as real processes on a real database: passwords from a
terminal prompt, a file or stdin (and the visible flag, labelled so); `create-channel` and
`add-member`; the example charter; `status` finding the server from HOST and PORT;
`--version`."""

from __future__ import annotations

import asyncio
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.e2e.clients import bearer, login
from tests.e2e.conftest import e2e_settings, running
from tests.support.cli import cli, run_in_terminal
from tests.support.seed import PASSWORD, Org

EXAMPLE_CHARTER = Path(__file__).resolve().parents[2] / "docs" / "charter.example.json"


def _user(email: str, *extra: str) -> tuple[str, ...]:
    return ("create-user", "--org", "initech", "--email", email, "--name", email[:3], *extra)


async def test_passwords_from_a_prompt_a_file_or_stdin(tmp_path: Path, database_url: str) -> None:
    run: dict[str, Any] = {"cwd": tmp_path, "database_url": database_url}
    assert (await cli("create-org", "initech", **run)).code == 0
    secret = tmp_path / "password.txt"
    secret.write_text("from-a-file-pw\nignored second line\n")
    from_file = await cli(*_user("fil@initech.test", "--password-file", str(secret)), **run)
    assert from_file.code == 0, from_file.err
    from_stdin = await cli(
        *_user("std@initech.test", "--password-stdin"), input="from-stdin-pw\n", **run
    )
    assert from_stdin.code == 0, from_stdin.err
    typed = await asyncio.to_thread(
        run_in_terminal,
        *_user("tty@initech.test"),
        answers=["from-a-prompt", "from-a-prompt"],
        **run,
    )
    assert typed.code == 0, typed.err
    mistyped = await asyncio.to_thread(
        run_in_terminal, *_user("typ@initech.test"), answers=["one-password", "another"], **run
    )
    assert mistyped.code == 1 and "the two passwords differ" in mistyped.err

    no_password = await cli(*_user("non@initech.test"), **run)
    assert no_password.code == 2 and "a password is required" in no_password.err
    both = await cli(
        *_user("bot@initech.test", "--password", "x" * 8, "--password-stdin"), input="y", **run
    )
    assert both.code == 2 and "not allowed with" in both.err
    empty = await cli(*_user("emp@initech.test", "--password-stdin"), input="", **run)
    assert empty.code == 1 and "no password in stdin" in empty.err
    helped = await cli("create-user", "--help", cwd=tmp_path)
    assert "visible to other users in `ps`" in " ".join(helped.out.split())

    async with running(e2e_settings(database_url)) as live:
        for email, password in (
            ("fil@initech.test", "from-a-file-pw"),
            ("std@initech.test", "from-stdin-pw"),
            ("tty@initech.test", "from-a-prompt"),
        ):
            await login(live.http, email, password)
        refused = await live.http.post(
            "/api/auth/login", json={"email": "typ@initech.test", "password": "one-password"}
        )
        assert refused.status_code == 401  # the mistyped user was never created


async def test_create_channel_and_add_member(tmp_path: Path, database_url: str) -> None:
    run: dict[str, Any] = {"cwd": tmp_path, "database_url": database_url}
    assert (await cli("create-org", "initech", **run)).code == 0
    for email in ("peter@initech.test", "milton@initech.test"):
        created = await cli(*_user(email, "--password", PASSWORD), **run)
        assert created.code == 0, created.err
    channel = ("--org", "initech", "--name", "tps-reports")
    made = await cli(
        "create-channel", *channel, "--topic", "Cover sheets", "--by", "Peter@Initech.test", **run
    )
    assert made.code == 0, made.err
    assert made.out.startswith("created channel #tps-reports") and "peter@initech.test" in made.out
    clash = await cli("create-channel", *channel, "--by", "peter@initech.test", **run)
    assert clash.code == 1 and "already exists" in clash.err
    stranger = await cli("create-channel", *channel, "--by", "bob@initech.test", **run)
    assert stranger.code == 1 and "no user 'bob@initech.test'" in stranger.err

    member = ("--org", "initech", "--channel", "tps-reports", "--email", "milton@initech.test")
    added = await cli("add-member", *member, **run)
    assert added.code == 0 and added.out.startswith("added milton@initech.test"), added
    again = await cli("add-member", *member, **run)
    assert again.code == 0 and again.out.startswith("already a member:")
    nowhere = await cli(
        "add-member", "--org", "initech", "--channel", "nope", "--email", "x@y.z", **run
    )
    assert nowhere.code == 1 and "no channel 'nope'" in nowhere.err
    no_org = await cli("add-member", "--org", "globex", *member[2:], **run)
    assert no_org.code == 1 and "organization 'globex' not found" in no_org.err

    async with running(e2e_settings(database_url)) as live:
        milton = await login(live.http, "milton@initech.test")
        channels = (await live.http.get("/api/channels", headers=bearer(milton))).json()
        assert [c["name"] for c in channels] == ["tps-reports"]
        assert channels[0]["topic"] == "Cover sheets"


async def test_the_example_charter_creates_an_orchestrator(
    tmp_path: Path, database_url: str
) -> None:
    run: dict[str, Any] = {"cwd": tmp_path, "database_url": database_url}
    assert (await cli("create-org", "initech", **run)).code == 0
    admin = await cli(*_user("adm@initech.test", "--password", PASSWORD, "--admin"), **run)
    assert admin.code == 0
    bot = await cli(
        *_user("grace@initech.test", "--password", PASSWORD, "--handle", "grace"),
        "--orchestrator",
        "--charter",
        str(EXAMPLE_CHARTER),
        **run,
    )
    assert bot.code == 0, bot.err
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"name": "Typo", "missoin": "x"}))
    refused = await cli(
        *_user("typ@initech.test", "--password", PASSWORD),
        "--orchestrator",
        "--charter",
        str(typo),
        **run,
    )
    assert refused.code == 1
    assert "missoin: unknown field (did you mean 'mission'?)" in refused.err

    async with running(e2e_settings(database_url)) as live:
        token = await login(live.http, "adm@initech.test")
        oid = bot.out.split("orchestrator id ")[1].strip()
        read = await live.http.get(f"/api/admin/orchestrators/{oid}", headers=bearer(token))
        grace = read.json()
        assert grace["role"] == "Release manager"
        stored = grace["charter"]
        assert stored["personality"]["communication_style"].startswith("Short answers")
        assert stored["communication_preferences"]["tone"] == "friendly but direct"


async def test_status_finds_the_server_from_host_and_port(
    tmp_path: Path, database_url: str, acme: Org
) -> None:
    async with running(e2e_settings(database_url)) as live:
        await login(live.http, "ada@acme.test")
        port = live.url.rsplit(":", 1)[1]
        shown = await cli(
            "status",
            "--email",
            "admin@acme.test",
            "--password-stdin",
            cwd=tmp_path,
            input=PASSWORD + "\n",
            HOST="127.0.0.1",
            PORT=port,
        )
        assert shown.code == 0, shown.err
        assert shown.out.splitlines()[1].split()[:3] == ["@ada", "Ada", "running"]
        typed = await asyncio.to_thread(
            run_in_terminal,
            "status",
            "--url",
            live.url,
            "--email",
            "admin@acme.test",
            cwd=tmp_path,
            database_url=None,
            answers=[PASSWORD],
        )
        assert typed.code == 0, typed.err
        assert "@ada" in typed.out


async def test_version_comes_from_the_installed_distribution(tmp_path: Path) -> None:
    shown = await cli("--version", cwd=tmp_path)
    assert shown.code == 0
    assert shown.out.strip() == f"neolith-orchestrator {metadata.version('neolith-orchestrator')}"
