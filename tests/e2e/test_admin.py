"""The admin API of one organization: daemons (status and lifecycle), the event log,
orchestrators and their charters, pushed daemon status; runtime status and probes."""

from __future__ import annotations

from typing import Any

from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live
from tests.support.seed import PASSWORD, Org
from tests.support.waiting import eventually

STATUS_FIELDS = {
    "orchestrator_id",
    "user_id",
    "name",
    "handle",
    "status",
    "health",
    "restart_count",
    "last_error",
    "queue_depth",
    "uptime_ms",
}
CHARTER = {"name": "Grace", "role": "Reviewer", "mission": "Review pull requests."}


async def test_admins_only(live: Live, acme: Org) -> None:
    pat = await login(live.http, "pat@acme.test")
    ada = acme.orchestrator_ids["ada"]
    for method, url in [
        ("GET", "/api/admin/daemons"),
        ("GET", f"/api/admin/daemons/{ada}"),
        ("POST", f"/api/admin/daemons/{ada}/start"),
        ("GET", "/api/admin/events"),
        ("GET", f"/api/admin/orchestrators/{ada}"),
        ("GET", "/api/runtime/status"),
    ]:
        response = await live.http.request(method, url, headers=bearer(pat))
        assert response.status_code == 403, url
        assert response.json()["error"]["code"] == "forbidden"
        anonymous = await live.http.request(method, url)
        assert anonymous.status_code == 401, url


async def test_daemon_lifecycle_from_the_admin_api(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    pat = await login(live.http, "pat@acme.test")
    ada = acme.orchestrator_ids["ada"]
    url = f"/api/admin/daemons/{ada}"

    async def act(action: str, expect: int = 200) -> dict[str, Any]:
        response = await live.http.post(f"{url}/{action}", headers=bearer(admin))
        assert response.status_code == expect, response.text
        body: dict[str, Any] = response.json()
        return body

    async with connected(live.url, admin) as admin_socket, connected(live.url, pat) as pat_socket:
        listed = (await live.http.get("/api/admin/daemons", headers=bearer(admin))).json()
        assert [d["handle"] for d in listed] == ["ada"]
        assert set(listed[0]) >= STATUS_FIELDS
        assert listed[0]["status"] == "stopped"

        def pushed() -> list[str]:
            return [s["status"] for s in admin_socket.of("daemon:status")]

        async def seen(status: str) -> None:
            # The admin's view follows each change. (Changes closer together than the
            # journal's write interval coalesce into the last one, so each is awaited.)
            await eventually(lambda: pushed() and pushed()[-1] == status)

        assert (await act("pause", 409))["error"]["code"] == "daemon_error"
        assert (await act("start"))["status"] == "running"
        await seen("running")
        assert (await act("pause"))["status"] == "paused"
        await seen("paused")
        assert (await act("resume"))["status"] == "running"
        await seen("running")
        restarted = await act("restart")
        assert restarted["status"] == "running" and restarted["restart_count"] == 0
        one = (await live.http.get(url, headers=bearer(admin))).json()
        assert set(one) >= STATUS_FIELDS
        assert one["health"]["status"] == "running"
        assert (await act("stop"))["status"] == "stopped"
        await seen("stopped")
        assert (await act("explode", 404))["error"]["code"] == "not_found"
        assert pat_socket.of("daemon:status") == []

    async def logged() -> list[str]:
        response = await live.http.get(
            "/api/admin/events", params={"orchestrator_id": str(ada)}, headers=bearer(admin)
        )
        return [e["type"] for e in response.json()["items"]]

    types = await eventually(
        lambda: _has(logged(), {"daemon:started", "daemon:stopped", "daemon:restarted"})
    )
    page = await live.http.get("/api/admin/events", params={"limit": 1}, headers=bearer(admin))
    first = page.json()
    assert len(first["items"]) == 1 and first["next_before"] == first["items"][0]["id"]
    older = await live.http.get(
        "/api/admin/events",
        params={"limit": 100, "before": first["next_before"]},
        headers=bearer(admin),
    )
    assert len(older.json()["items"]) == len(types) - 1


async def _has(pending: Any, wanted: set[str]) -> list[str] | None:
    types: list[str] = await pending
    return types if wanted <= set(types) else None


async def test_create_an_orchestrator_and_edit_its_charter(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    created = await live.http.post(
        "/api/admin/orchestrators",
        json={
            "email": "grace@acme.test",
            "name": "Grace",
            "password": PASSWORD,
            "handle": "grace",
            "charter": CHARTER,
        },
        headers=bearer(admin),
    )
    assert created.status_code == 201, created.text
    grace = created.json()
    assert grace["user"]["is_orchestrator"] is True and grace["role"] == "Reviewer"
    assert grace["charter"]["mission"] == "Review pull requests."
    listed = (await live.http.get("/api/admin/daemons", headers=bearer(admin))).json()
    assert {d["handle"] for d in listed} == {"ada", "grace"}

    updated = await live.http.put(
        f"/api/admin/orchestrators/{grace['id']}/charter",
        json={**CHARTER, "role": "Lead reviewer", "capabilities": ["python"]},
        headers=bearer(admin),
    )
    assert updated.status_code == 200
    assert updated.json()["role"] == "Lead reviewer"
    bad = await live.http.put(
        f"/api/admin/orchestrators/{grace['id']}/charter",
        json={"role": "no name", "colour": "blue"},
        headers=bearer(admin),
    )
    assert bad.status_code == 422
    assert "name" in bad.json()["error"]["message"]
    again = await live.http.get(f"/api/admin/orchestrators/{grace['id']}", headers=bearer(admin))
    assert again.json()["charter"]["capabilities"] == ["python"]

    # The new orchestrator logs in like anyone else, and its daemon starts.
    await login(live.http, "grace@acme.test")
    status = await live.http.get(f"/api/admin/daemons/{grace['id']}", headers=bearer(admin))
    assert status.json()["status"] == "running"


async def test_bad_orchestrators_are_refused(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    base = {"email": "new@acme.test", "name": "New", "password": PASSWORD, "charter": CHARTER}
    cases: list[tuple[dict[str, Any], int]] = [
        ({**base, "charter": {"role": "nameless"}}, 422),
        ({**base, "charter": "not an object"}, 422),
        ({**base, "password": "short"}, 422),
        ({**base, "email": "pat@acme.test"}, 409),
        ({**base, "handle": "ada"}, 409),
        ({k: v for k, v in base.items() if k != "charter"}, 422),
    ]
    for payload, status in cases:
        response = await live.http.post(
            "/api/admin/orchestrators", json=payload, headers=bearer(admin)
        )
        assert response.status_code == status, (payload, response.text)
    listed = (await live.http.get("/api/admin/daemons", headers=bearer(admin))).json()
    assert [d["handle"] for d in listed] == ["ada"]


async def test_runtime_status_and_probes(live: Live, acme: Org) -> None:
    admin = await login(live.http, "admin@acme.test")
    await login(live.http, "ada@acme.test")
    status = await live.http.get("/api/runtime/status", headers=bearer(admin))
    assert status.status_code == 200
    body = status.json()
    assert body["manager"]["running"] is True
    assert body["manager"]["daemons"]["by_status"]["running"] == 1
    assert body["generator"]["provider"] == "offline"
    assert body["logged_in_orchestrators"] == 1

    assert (await live.http.get("/healthz")).json() == {"status": "ok"}
    ready = await live.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": True, "manager": True}

    metrics = await live.http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = metrics.text
    assert 'neolith_auth_logins_total{outcome="success"} 2' in text
    assert "# TYPE neolith_socket_connections gauge" in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2, line
