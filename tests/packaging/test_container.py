"""The container files, checked without a Docker engine: the compose file parses, its
services are the app beside PostgreSQL and Redis, and it names only settings that
`.env.orchestrator.example` lists; the Dockerfile installs the wheel, runs as a non-root
user and checks health on /readyz, copying only files that exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
# Variables of the base image and of Python itself, not ours.
_NOT_SETTINGS = ("PYTHON",)


def _example_settings() -> set[str]:
    text = (ROOT / ".env.orchestrator.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_the_app_beside_postgresql_and_redis() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis"} <= set(services)
    apps = {name: s for name, s in services.items() if s.get("build") == "."}
    assert apps, "no service builds the app from the Dockerfile"
    for service in apps.values():
        assert set(service["depends_on"]) >= {"postgres", "redis"}
        url = service["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and "@postgres:" in url


def test_compose_names_only_settings_the_example_lists() -> None:
    known = _example_settings()
    assert "DATABASE_URL" in known  # the pattern reads the example
    services = _compose()["services"]
    for name, service in services.items():
        if service.get("build") != ".":
            continue
        unknown = set(service.get("environment", {})) - known
        assert unknown == set(), f"{name} sets variables the app does not read: {unknown}"


def test_dockerfile_installs_the_wheel_as_a_non_root_user_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*?/readyz", text, flags=re.MULTILINE | re.DOTALL)
    assert "pip wheel" in text and re.search(r"pip install [^\n]*\.whl", text)
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"the Dockerfile copies a missing {source}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "migrations" not in ignored and "neolith_orchestrator" not in ignored
    env = re.findall(r"^\s*(?:ENV\s+)?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)
    ours = {v for v in env if not v.startswith(_NOT_SETTINGS)}
    assert ours and ours <= _example_settings()
