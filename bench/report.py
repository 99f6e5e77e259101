"""The table on the terminal, the JSON in docs/benchmarks.json and the generated part of
docs/benchmarks.md (between the `bench:figures` markers; the prose around it is kept)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[1] / "docs"
JSON_PATH = DOCS / "benchmarks.json"
MD_PATH = DOCS / "benchmarks.md"
BEGIN, END = "<!-- bench:figures:begin -->", "<!-- bench:figures:end -->"


def machine(postgres_version: str | None = None) -> dict[str, Any]:
    """What the figures came from."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = math.nan
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "sqlite": sqlite3.sqlite_version,
        "load_1m_at_start": round(load, 2),
    }
    if postgres_version:
        info["postgresql"] = postgres_version
    return info


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def _status(figure: dict[str, Any]) -> str:
    met = figure.get("met")
    if met is None:
        return ""
    return f"{'met' if met else 'MISSED'} ({figure['target_text']})"


def rows(figures: list[dict[str, Any]]) -> list[list[str]]:
    out = []
    for f in figures:
        ratio = f.get("ratio")
        value = "unanswered" if f.get("unanswered") else f"{_fmt(f['value'])} {f['unit']}"
        out.append(
            [
                f["scenario"],
                f["name"],
                value,
                f"{_fmt(f['floor'])} {f['unit']}" if f["floor"] is not None else "—",
                f"x{_fmt(ratio)}" if ratio is not None else "—",
                _status(f),
            ]
        )
    return out


HEADER = ["scenario", "figure", "value", "floor", "ratio", "target"]


def table(figures: list[dict[str, Any]]) -> str:
    """A plain-text table for the terminal."""
    body = rows(figures)
    widths = [max(len(r[i]) for r in [HEADER, *body]) for i in range(len(HEADER))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def markdown(figures: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows(figures):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    notes = [f"- *{f['name']}*: {f['note']}" for f in figures if f.get("note")]
    return "\n".join(lines + (["", *notes] if notes else []))


def save(backend: str, run: dict[str, Any], only: list[str] | None) -> dict[str, Any]:
    """Merge this run into docs/benchmarks.json (per backend; with --only, per scenario)."""
    data: dict[str, Any] = {"runs": {}}
    if JSON_PATH.exists():
        with contextlib.suppress(json.JSONDecodeError):
            data = json.loads(JSON_PATH.read_text())
    runs = data.setdefault("runs", {})
    previous = runs.get(backend)
    if only and previous:
        kept = [f for f in previous["figures"] if f["scenario"] not in only]
        run["figures"] = _ordered(kept + run["figures"])
        run["partial_update"] = sorted(set(only) | set(previous.get("partial_update", [])))
    runs[backend] = run
    JSON_PATH.parent.mkdir(parents=True, exist_ok=True)
    JSON_PATH.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    _update_markdown(data)
    return data


def _ordered(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {"idle": 0, "latency": 1, "cost": 2, "throughput": 3, "recovery": 4}
    return sorted(figures, key=lambda f: order.get(f["scenario"], 9))


def _json_default(value: Any) -> Any:
    return str(value)


def _update_markdown(data: dict[str, Any]) -> None:
    parts = []
    for backend, run in sorted(data["runs"].items()):
        m = run["machine"]
        versions = f"SQLite {m.get('sqlite')}"
        if m.get("postgresql"):
            versions += f", PostgreSQL {m['postgresql']}"
        parts.append(
            f"### {backend} — {run['mode']} run, {run['finished_at']}\n\n"
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['implementation']} {m['python']}, "
            f"{m['os']}, {versions}; load average {m['load_1m_at_start']} at start. "
            f"Command: `{run['command']}` ({run['duration_s']:.0f} s).\n\n"
            + markdown(run["figures"])
        )
    block = f"{BEGIN}\n" + "\n\n".join(parts) + f"\n{END}"
    text = MD_PATH.read_text() if MD_PATH.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    MD_PATH.write_text(text)


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
