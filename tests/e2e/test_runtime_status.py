"""`/api/runtime/status` shows an admin their own organization: its daemons, its logged-in
orchestrators and sockets, the model in use — never another tenant's counts, the instance id
or the model's base URL (process-wide figures are on /metrics)."""

from __future__ import annotations

from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live
from tests.support.seed import Org
from tests.support.waiting import eventually


async def test_runtime_status_is_scoped_to_the_callers_organization(
    live: Live, acme: Org, globex: Org
) -> None:
    acme_admin = await login(live.http, "admin@acme.test")
    globex_admin = await login(live.http, "admin@globex.test")
    await login(live.http, "max@globex.test")  # globex's orchestrator: its daemon runs
    globex_pat = await login(live.http, "pat@globex.test")

    async def status(token: str) -> dict[str, object]:
        response = await live.http.get("/api/runtime/status", headers=bearer(token))
        assert response.status_code == 200
        body: dict[str, object] = response.json()
        return body

    async def max_running() -> bool:
        body = await status(globex_admin)
        return body["manager"]["daemons"]["by_status"].get("running") == 1  # type: ignore[index]

    async with connected(live.url, globex_pat):
        await eventually(max_running)
        acme_view = await status(acme_admin)
        globex_view = await status(globex_admin)

    assert acme_view["organization_id"] == str(acme.org.id)
    assert acme_view["manager"] == {
        **acme_view["manager"],  # type: ignore[dict-item]
        "daemons": {"total": 1, "by_status": {"stopped": 1}},
    }
    assert acme_view["logged_in_orchestrators"] == 0
    assert acme_view["sockets"] == 0
    assert globex_view["manager"]["daemons"] == {  # type: ignore[index]
        "total": 1,
        "by_status": {"running": 1},
    }
    assert globex_view["logged_in_orchestrators"] == 1
    assert globex_view["sockets"] == 1
    for view in (acme_view, globex_view):
        text = str(view)
        assert "instance_id" not in text and "base_url" not in text
        generator = view["generator"]
        assert set(generator) == {"provider", "model", "offline", "providers"}  # type: ignore[arg-type]
        # The providers this server answers with, by name, with nothing but their model.
        assert all(set(p) == {"model"} for p in generator["providers"].values())  # type: ignore[index]
        assert view["manager"]["running"] is True  # type: ignore[index]

    pat = await login(live.http, "pat@acme.test")
    refused = await live.http.get("/api/runtime/status", headers=bearer(pat))
    assert refused.status_code == 403
