"""The HTTP API describes itself: a valid OpenAPI 3.1 schema at /openapi.json holding every
route the app serves, responses that match it, and a /docs page that needs nothing but this
server (no script, no CDN) under the Content-Security-Policy."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from openapi_spec_validator import validate
from starlette.routing import Route

from neolith_orchestrator.http import outputs
from neolith_orchestrator.http.operations import OPERATIONS
from tests.e2e.clients import bearer
from tests.e2e.conftest import Live
from tests.support.seed import PASSWORD, Org


def _served(live: Live) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every route of the app (mounts, e.g. static files, aside)."""
    served = set()
    for route in live.app.http.routes:
        if not isinstance(route, Route):
            continue
        path = re.sub(r"{(\w+)(:\w+)?}", r"{\1}", route.path)
        served |= {(m, path) for m in (route.methods or set()) - {"HEAD"}}
    return served


async def test_the_schema_is_valid_and_holds_every_route(live: Live) -> None:
    response = await live.http.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)  # raises unless a valid OpenAPI document
    assert schema["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    assert documented == _served(live)
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    # Every entry of the operations table is a route the app serves (none left stale).
    routes = {(m, r.path) for r in live.app.http.routes for m in getattr(r, "methods", None) or ()}
    assert set(OPERATIONS) <= routes
    login_op = schema["paths"]["/api/auth/login"]["post"]
    body_ref = login_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    login_in = schema["components"]["schemas"][body_ref.rsplit("/", 1)[-1]]
    assert set(login_in["required"]) == {"email", "password"}
    assert "security" not in login_op
    message_post = schema["paths"]["/api/channels/{channel_id}/messages"]["post"]
    assert message_post["security"] == [{"bearer": []}]
    assert {"201", "401", "422"} <= set(message_post["responses"])
    error = schema["components"]["schemas"]["ErrorBody"]
    assert {"code", "message", "details"} <= set(error["properties"])


async def test_responses_match_the_documented_shapes(live: Live, acme: Org) -> None:
    logged_in = await live.http.post(
        "/api/auth/login", json={"email": "admin@acme.test", "password": PASSWORD}
    )
    outputs.LoginOut.model_validate(logged_in.json())
    token = bearer(logged_in.json()["token"])
    channel = f"/api/channels/{acme.channel_id}"
    posted = await live.http.post(f"{channel}/messages", json={"content": "hi"}, headers=token)
    outputs.MessageOut.model_validate(posted.json())
    page = await live.http.get(f"{channel}/messages", headers=token)
    outputs.MessagePage.model_validate(page.json())
    for item in (await live.http.get("/api/channels", headers=token)).json():
        outputs.ChannelOut.model_validate(item)
    for item in (await live.http.get("/api/admin/daemons", headers=token)).json():
        outputs.DaemonStatusOut.model_validate(item)
    status = await live.http.get("/api/runtime/status", headers=token)
    outputs.RuntimeStatusOut.model_validate(status.json())
    refused = await live.http.post(f"{channel}/messages", json={}, headers=token)
    error = outputs.Error.model_validate(refused.json())
    assert error.error.details is not None and error.error.details[0].field == "content"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.styles: list[str | None] = []
        self.inline_styles = 0
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts.append(found)
        if tag == "style" or "style" in found:
            self.inline_styles += 1
        if tag == "link" and found.get("rel") == "stylesheet":
            self.styles.append(found.get("href"))
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.links.append(str(found["href"]))


async def test_the_docs_page_works_offline_under_the_csp(live: Live) -> None:
    response = await live.http.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page = _Page()
    page.feed(response.text)
    assert page.scripts == [] and page.inline_styles == 0
    assert page.styles == ["/docs/docs.css"]
    css = await live.http.get("/docs/docs.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    # Every route is on the page, and every in-page link lands on something.
    for method, path in _served(live):
        assert f"<code>{path}</code>" in response.text, (method, path)
    for link in page.links:
        assert (link.startswith("#") and link[1:] in page.ids) or link == "/openapi.json", link
    assert {"op-login", "schema-LoginOut", "schema-ErrorBody"} <= page.ids
