"""`/metrics` through prometheus-client: one registry per app (so one process holds many
apps), process and GC collectors, the same metric names as before, tokens by provider and
model; and METRICS_PORT moves it to a port of its own, started and stopped with the app."""

from __future__ import annotations

import socket

import httpx
import pytest

from neolith_orchestrator.app import create_app
from neolith_orchestrator.config import Settings
from neolith_orchestrator.errors import ConfigError
from tests.e2e.clients import connected, login
from tests.e2e.conftest import e2e_settings, running
from tests.support.model_server import INPUT_TOKENS, ModelServer, ok
from tests.support.seed import Org
from tests.support.waiting import eventually

# Every name exposed before the move to prometheus-client.
NAMES = (
    "neolith_daemons",
    "neolith_replies_total",
    "neolith_reply_failures_total",
    "neolith_daemon_restarts_total",
    "neolith_daemon_crashes_total",
    "neolith_daemon_gave_up_total",
    "neolith_mentions_deferred_total",
    "neolith_model_tokens_total",
    "neolith_reply_latency_seconds",
    "neolith_auth_logins_total",
    "neolith_auth_logouts_total",
    "neolith_auth_session_sweeps_total",
    "neolith_socket_connections",
    "neolith_process_uptime_seconds",
)


def _samples(text: str) -> dict[str, float]:
    """`name{labels}` → value, for every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def _value(samples: dict[str, float], name: str, **labels: str) -> float:
    """One sample by name and labels, whatever order the labels are written in."""
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for key, value in samples.items():
        metric, _, rest = key.partition("{")
        if metric == name and set(filter(None, rest.rstrip("}").split(","))) == wanted:
            return value
    raise KeyError(f"{name} {labels}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_metrics_after_a_reply(database_url: str, acme: Org) -> None:
    async with ModelServer() as model:
        model.script(ok("Sure thing, Pat.", chunks=2))
        settings = e2e_settings(
            database_url,
            anthropic_api_key="test-key",
            anthropic_base_url=model.url,
            anthropic_model="claude-test-1",
        )
        async with running(settings) as live:
            await login(live.http, "ada@acme.test")
            pat = await login(live.http, "pat@acme.test")
            async with connected(live.url, pat) as socket_:
                ack = await socket_.send(
                    {"channel_id": str(acme.channel_id), "content": "@ada are you there?"}
                )
                assert ack["ok"] is True
                await eventually(lambda: len(socket_.of("message:new")) >= 2)
                response = await live.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = response.text
    for name in NAMES:
        assert f"# TYPE {name} " in text, name
    samples = _samples(text)
    tokens = "neolith_model_tokens_total"
    labels = {"provider": "anthropic", "model": "claude-test-1"}
    assert _value(samples, tokens, direction="input", **labels) == INPUT_TOKENS
    assert _value(samples, tokens, direction="output", **labels) >= 1
    assert samples['neolith_replies_total{model="claude-test-1"}'] == 1
    assert samples["neolith_reply_latency_seconds_count"] == 1
    assert samples['neolith_daemons{status="running"}'] == 1
    assert samples['neolith_auth_logins_total{outcome="success"}'] == 2
    assert samples["neolith_socket_connections"] == 1
    # prometheus-client's own collectors, registered on the app's registry.
    assert samples["process_cpu_seconds_total"] > 0
    assert any(key.startswith("python_gc_objects_collected_total") for key in samples)


async def test_each_app_has_its_own_registry(database_url: str) -> None:
    settings = e2e_settings(database_url)
    first, second = create_app(settings), create_app(settings)
    assert first.metrics_registry is not second.metrics_registry
    async with running(settings) as live:
        text = (await live.http.get("/metrics")).text
    assert text.count("# TYPE process_cpu_seconds_total counter") == 1


async def test_metrics_on_a_port_of_their_own(database_url: str, acme: Org) -> None:
    port = _free_port()
    settings = e2e_settings(database_url, metrics_port=port)
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    async with running(settings) as live, httpx.AsyncClient() as other:
        await login(live.http, "pat@acme.test")
        on_main = await live.http.get("/metrics")
        assert on_main.status_code == 404
        assert on_main.json()["error"]["code"] == "not_found"
        scraped = await other.get(metrics_url)
        assert scraped.status_code == 200
        assert scraped.headers["x-content-type-options"] == "nosniff"
        assert _samples(scraped.text)['neolith_auth_logins_total{outcome="success"}'] == 1
        assert (await other.get(f"http://127.0.0.1:{port}/api/auth/me")).status_code == 404
    # The lifespan stopped it (and `running` checked that its task is gone).
    async with httpx.AsyncClient() as other:
        with pytest.raises(httpx.ConnectError):
            await other.get(metrics_url)


async def test_a_taken_metrics_port_fails_the_start(database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_app(e2e_settings(database_url, metrics_port=port))
        with pytest.raises(ConfigError, match="METRICS_PORT"):
            async with app.http.router.lifespan_context(app.http):
                pass
    assert app.context is None


def test_metrics_port_must_differ_from_port() -> None:
    with pytest.raises(ValueError, match="METRICS_PORT must differ"):
        Settings(_env_file=None, port=9000, metrics_port=9000)  # type: ignore[call-arg]
