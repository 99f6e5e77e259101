"""`python -m bench [--quick] [--only NAME[,NAME]] [--postgres]`

Runs each scenario in its own fresh interpreter, prints one table (every figure with its
floor from the same run and the ratio between them), and writes the figures to
docs/benchmarks.json and the generated part of docs/benchmarks.md.

Database: a temporary SQLite file per scenario by default; with DATABASE_URL set to a
PostgreSQL server, a scratch database per scenario on that server (its user needs
CREATEDB); with --postgres, a throwaway server started for the run
(tests/support/postgres.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report, support

SCENARIOS = ("idle", "latency", "cost", "throughput", "recovery")
TIMEOUT = {"quick": 300, "full": 600}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about two minutes in all")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these scenarios ({', '.join(SCENARIOS)}); repeat or comma-separate",
    )
    parser.add_argument(
        "--postgres", action="store_true", help="start a throwaway PostgreSQL server and use it"
    )
    parser.add_argument("--no-save", action="store_true", help="print the table; leave docs/ alone")
    args = parser.parse_args()
    only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = sorted(set(only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    args.only = only
    return args


def _run_scenario(name: str, quick: bool, env: dict[str, str]) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    cmd = [sys.executable, "-m", f"bench.{name}", "--out", str(out)]
    if quick:
        cmd.append("--quick")
    started = time.perf_counter()
    print(f"== {name} ...", flush=True)
    try:
        done = subprocess.run(
            cmd,
            cwd=support.ROOT,
            env=env,
            timeout=TIMEOUT["quick" if quick else "full"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip()[-4000:] or f"exit status {done.returncode}")
        figures: list[dict[str, Any]] = json.loads(out.read_text())
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        print(f"   {name} FAILED: {exc}", file=sys.stderr, flush=True)
        figures = [
            support.Figure(name, "scenario failed", None, "", note=str(exc)[-300:]).as_dict()
        ]
    finally:
        out.unlink(missing_ok=True)
    print(f"   {name}: {time.perf_counter() - started:.0f} s", flush=True)
    return figures


async def _postgres_version(url: str) -> str:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def main() -> int:
    args = _args()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(support.ROOT)
    server = None
    if args.postgres:
        from tests.support.postgres import start_postgres

        server = start_postgres()
        env["DATABASE_URL"] = server.url()
    url = env.get("DATABASE_URL", "")
    backend = "postgresql" if url.startswith(("postgres", "postgresql")) else "sqlite"
    if backend == "sqlite":
        env.pop("DATABASE_URL", None)
    command = "python -m bench" + (" --quick" if args.quick else "")
    command += "".join(f" --only {n}" for n in args.only)
    command += " --postgres" if args.postgres else ""
    try:
        pg_version = asyncio.run(_postgres_version(url)) if backend == "postgresql" else None
        info = report.machine(pg_version)
        print(f"bench on {backend}: {info['cpu']}, {info['cores']} cores, Python {info['python']}")
        started = time.perf_counter()
        figures: list[dict[str, Any]] = []
        for name in args.only or SCENARIOS:
            figures += _run_scenario(name, args.quick, env)
        duration = time.perf_counter() - started
    finally:
        if server is not None:
            server.stop()
    print()
    print(report.table(figures))
    for f in figures:
        if f.get("note"):
            print(f"  · {f['name']}: {f['note']}")
    if not args.no_save:
        run = {
            "backend": backend,
            "mode": "quick" if args.quick else "full",
            "command": command,
            "finished_at": report.now(),
            "duration_s": round(duration, 1),
            "machine": info,
            "figures": figures,
        }
        report.save(backend, run, args.only or None)
        print(
            f"\nwrote {report.JSON_PATH.relative_to(support.ROOT)} and "
            f"{report.MD_PATH.relative_to(support.ROOT)}"
        )
    return 1 if any(f["name"] == "scenario failed" for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main())
