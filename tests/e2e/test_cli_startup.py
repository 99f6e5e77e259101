"""Start-up as an operator sees it, the real command in a real process: a database that
cannot be opened is one line on stderr naming it (its password never printed), the SQLite
file's full path is logged, and `LOG_FORMAT=json` makes every line of `serve` JSON."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx

from tests.support.cli import Result, cli, free_port, start_cli
from tests.support.waiting import eventually

SECRET = "s3cret-Pw"
COMMANDS = (("migrate",), ("serve",), ("create-org", "initech"), ("demo",))


def _one_line(result: Result) -> str:
    assert result.code == 1, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    assert SECRET not in result.err + result.out
    return lines[0]


async def test_an_unreachable_postgresql_is_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    url = f"postgresql://bob:{SECRET}@127.0.0.1:{free_port()}/neolith"
    for command in COMMANDS:
        line = _one_line(await cli(*command, cwd=tmp_path, database_url=url))
        assert line.startswith("error: cannot open the database"), line
        assert "bob:***@127.0.0.1" in line and "Connect call failed" in line


async def test_with_json_logs_the_failure_is_a_json_line_too(tmp_path: Path) -> None:
    url = f"postgresql://bob:{SECRET}@127.0.0.1:{free_port()}/neolith"
    failed = await cli("serve", cwd=tmp_path, database_url=url, LOG_FORMAT="json")
    (entry,) = [json.loads(line) for line in _one_line(failed).splitlines()]
    assert entry["level"] == "ERROR"
    assert entry["message"].startswith("error: cannot open the database (PostgreSQL ")


async def test_an_sqlite_file_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database's directory should be")
    cases = {
        blocker / "neolith.db": f"{blocker} is not a directory",
        tmp_path / "missing" / "neolith.db": f"its directory {tmp_path / 'missing'} does not exist",
        tmp_path: "that path is a directory",
    }
    for path, problem in cases.items():
        for command in COMMANDS:
            url = f"sqlite:///{path}"
            line = _one_line(await cli(*command, cwd=tmp_path, database_url=url))
            assert line == f"error: cannot open the database (SQLite file {path}): {problem}"


async def test_invalid_settings_never_echo_a_password(tmp_path: Path) -> None:
    url = f"mysql://bob:{SECRET}@db.internal/neolith"
    for command in COMMANDS:
        line = _one_line(await cli(*command, cwd=tmp_path, database_url=url))
        assert "DATABASE_URL" in line and "unknown database scheme" in line
        assert "mysql://bob:***@db.internal/neolith" in line
    bad_format = _one_line(await cli("migrate", cwd=tmp_path, LOG_FORMAT="xml"))
    assert "LOG_FORMAT" in bad_format


async def test_the_sqlite_files_full_path_is_logged_at_start(tmp_path: Path) -> None:
    result = await cli(
        "migrate", cwd=tmp_path, database_url="sqlite:///./here.db", LOG_LEVEL="INFO"
    )
    assert result.code == 0, result.err
    full = tmp_path / "here.db"  # pytest gives resolved temporary paths
    assert f"database: SQLite file {full}" in result.err
    assert result.out.strip() == f"database is up to date (SQLite file {full})"


async def test_json_logs_make_every_line_of_serve_json(tmp_path: Path) -> None:
    port = free_port()
    process = await start_cli(
        "serve",
        "--port",
        str(port),
        cwd=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'json.db'}",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(ready, within=60)
            assert (await http.get("/healthz")).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode() == ""
    entries = [json.loads(line) for line in err.decode().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    loggers = {e["logger"] for e in entries}
    assert {"uvicorn.error", "uvicorn.access", "neolith_orchestrator.app"} <= loggers
    (health,) = [e for e in entries if e.get("path") == "/healthz"]
    assert health["status"] == 200 and health["method"] == "GET"
    assert any(e["message"].startswith("Uvicorn running on") for e in entries)
    assert any(e["message"] == f"database: SQLite file {tmp_path / 'json.db'}" for e in entries)
