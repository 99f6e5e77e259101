"""The web app over plain HTTP: the page and its files are served under the agreed
Content-Security-Policy, the vendored Socket.IO client keeps its licence header, and the two
reads the app adds (presence, the health panel's figures) keep to their callers."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live
from tests.support.seed import Org
from tests.support.waiting import eventually

pytestmark = pytest.mark.sqlite_only


async def test_the_page_and_its_files_are_served_under_the_csp(live: Live) -> None:
    page = await live.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert '<script type="module" src="/web/js/main.js">' in page.text
    assert "<style" not in page.text and "style=" not in page.text
    for path in ("/web/js/main.js", "/web/app.css", "/web/vendor/socket.io.esm.min.js"):
        response = await live.http.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == csp
        assert response.headers["x-content-type-options"] == "nosniff"
    client = await live.http.get("/web/vendor/socket.io.esm.min.js")
    assert client.text.startswith("/*!\n * Socket.IO v4.")
    assert "Released under the MIT License." in client.text[:200]
    missing = await live.http.get("/web/js/nothing-here.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_presence_lists_who_is_online(live: Live, acme: Org) -> None:
    pat = await login(live.http, "pat@acme.test")
    admin = await login(live.http, "admin@acme.test")
    await login(live.http, "ada@acme.test")
    assert (await live.http.get("/api/presence")).status_code == 401
    expected = {"admin": "OFFLINE", "pat": "ONLINE", "ada": "ONLINE"}

    async def statuses() -> dict[str, str]:
        response = await live.http.get("/api/presence", headers=bearer(admin))
        assert response.status_code == 200
        return {p["handle"]: p["status"] for p in response.json()}

    async with connected(live.url, pat):
        # ada's row turns ONLINE when the daemon's journal commits it.
        await eventually(lambda: _equal(statuses(), expected))
    await eventually(lambda: _equal(statuses(), {**expected, "pat": "OFFLINE"}))


async def _equal(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def test_health_figures_are_for_admins(live: Live, acme: Org) -> None:
    pat = await login(live.http, "pat@acme.test")
    admin = await login(live.http, "admin@acme.test")
    refused = await live.http.get("/api/admin/health", headers=bearer(pat))
    assert refused.status_code == 403
    await login(live.http, "ada@acme.test")
    figures = (await live.http.get("/api/admin/health", headers=bearer(admin))).json()
    assert figures["instance_id"] == live.ctx.manager.instance_id
    assert figures["replies_total"] == 0
    assert figures["reply_latency_seconds"]["count"] == 0
    ada = str(acme.orchestrator_ids["ada"])
    assert figures["owners"] == {ada: live.ctx.manager.instance_id}
