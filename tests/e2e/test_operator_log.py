"""What an operator reads in the server's log, from the real `serve` process: a daemon whose
API key the model refuses is an ERROR line naming the orchestrator and the reason, and the
mention it could not answer is a WARNING line naming the job — at LOG_LEVEL=WARNING, where
the access log says nothing."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import httpx

from tests.e2e.clients import bearer, login
from tests.support.cli import free_port, start_cli
from tests.support.model_server import ModelServer, status
from tests.support.waiting import eventually


async def test_a_refused_api_key_is_logged_naming_the_daemon_and_the_reason(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    async with ModelServer(default=status(401)) as model:
        process = await start_cli(
            "serve",
            "--demo",
            "--port",
            str(port),
            cwd=tmp_path,
            database_url=database_url,
            ANTHROPIC_API_KEY="sk-revoked",
            ANTHROPIC_BASE_URL=model.url,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

                async def ready() -> bool:
                    try:
                        return (await http.get("/readyz")).status_code == 200
                    except httpx.TransportError:
                        return False

                await eventually(ready, within=60)
                sam = await login(http, "sam@demo.example", "demo-person-password")
                (general,) = (await http.get("/api/channels", headers=bearer(sam))).json()
                url = f"/api/channels/{general['id']}/messages"
                await http.post(url, json={"content": "@ada hi!"}, headers=bearer(sam))
                dana = await login(http, "admin@demo.example", "demo-admin-password")

                async def in_error() -> bool:
                    daemons = (await http.get("/api/admin/daemons", headers=bearer(dana))).json()
                    return bool(daemons[0]["status"] == "error")

                await eventually(in_error)
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), 60)
    log = err.decode()
    assert process.returncode == 0, log
    assert model.requests  # the key was tried, and refused
    failed = [line for line in log.splitlines() if " ERROR " in line and "@ada" in line]
    assert len(failed) == 1, log
    assert re.search(r"daemon @ada \(organization [0-9a-f-]{36}\) failed permanently", failed[0])
    assert "401" in failed[0]
    (reply,) = [line for line in log.splitlines() if "could not answer a mention" in line]
    assert " WARNING " in reply and "@ada" in reply
    assert re.search(r"job [0-9a-f-]{36}\)", reply) and "401" in reply
    assert "sk-revoked" not in log
