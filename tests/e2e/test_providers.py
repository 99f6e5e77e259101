"""Providers and budgets end to end, through the real server: two orchestrators of one
organization answered each by its own provider (the Anthropic and the OpenAI-compatible
loopback servers, through the real SDKs), charters naming a provider without credentials
refused on save (HTTP and CLI), and a monthly token budget that turns mentions into notices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neolith_orchestrator.db.engine import Database
from tests.e2e.clients import bearer, connected, login
from tests.e2e.conftest import Live, e2e_settings, running
from tests.e2e.test_cli import cli
from tests.support.model_server import INPUT_TOKENS, ModelServer, ok, status
from tests.support.openai_server import PROMPT_TOKENS, OpenAIServer
from tests.support.seed import PASSWORD, Org, seed_org
from tests.support.waiting import eventually

BOB_CHARTER = {
    "name": "Bob",
    "role": "Local model",
    "mission": "Answer from our own servers.",
    "model_settings": {"provider": "openai", "model": "llama-local"},
}


async def _answers(live: Live, token: str, org: Org, mention_id: str) -> list[dict[str, Any]]:
    response = await live.http.get(
        f"/api/channels/{org.channel_id}/messages", headers=bearer(token)
    )
    assert response.status_code == 200
    return [m for m in response.json()["items"] if m["reply_to_id"] == mention_id]


async def test_two_orchestrators_each_answered_by_its_own_provider(
    database: Database, database_url: str
) -> None:
    org = await seed_org(database, "acme", ("ada", "bob"))
    async with ModelServer() as claude, OpenAIServer() as local:
        claude.script(ok("Ada here, from Claude.", chunks=3))
        # The OpenAI-compatible server first says 429 with Retry-After; Bob still answers once.
        local.script(status(429, retry_after=0.2), ok("Bob here, from the local model.", chunks=4))
        settings = e2e_settings(
            database_url,
            anthropic_api_key="test-key",
            anthropic_base_url=claude.url,
            anthropic_model="claude-test",
            openai_api_key="sk-local",
            openai_base_url=local.url,
            openai_retry_backoff_initial=10,
        )
        async with running(settings) as live:
            admin = await login(live.http, "admin@acme.test")
            pat = await login(live.http, "pat@acme.test")
            bob_id = org.orchestrator_ids["bob"]
            edited = await live.http.put(
                f"/api/admin/orchestrators/{bob_id}/charter",
                json=BOB_CHARTER,
                headers=bearer(admin),
            )
            assert edited.status_code == 200, edited.text
            await login(live.http, "ada@acme.test")
            await login(live.http, "bob@acme.test")
            async with connected(live.url, pat) as pat_socket:
                posted = await live.http.post(
                    f"/api/channels/{org.channel_id}/messages",
                    json={"content": "@ada @bob where do your answers come from?"},
                    headers=bearer(pat),
                )
                assert posted.status_code == 201
                mention = posted.json()

                async def both() -> list[dict[str, Any]]:
                    found = await _answers(live, pat, org, mention["id"])
                    return found if len(found) == 2 else []

                answers = {a["author_id"]: a for a in await eventually(both)}
                ada_reply = answers[str(org.orchestrators["ada"].id)]
                bob_reply = answers[str(org.orchestrators["bob"].id)]
                assert ada_reply["content"] == "Ada here, from Claude."
                assert ada_reply["metadata"]["model"] == "claude-test"
                assert bob_reply["content"] == "Bob here, from the local model."
                assert bob_reply["metadata"]["model"] == "llama-local"
                # Both streamed to the channel as deltas.
                streamed = {d["author_id"] for d in pat_socket.of("message:delta")}
                assert streamed == set(answers)

            [to_claude] = claude.requests
            assert to_claude.body["model"] == "claude-test"
            assert to_claude.body["system"].startswith("You are Ada")
            assert [r.body["model"] for r in local.requests] == ["llama-local"] * 2
            system = local.requests[-1].body["messages"][0]
            assert system["role"] == "system" and system["content"].startswith("You are Bob")
            assert local.requests[-1].headers["authorization"] == "Bearer sk-local"

            daemons = await live.http.get("/api/admin/daemons", headers=bearer(admin))
            by_handle = {d["handle"]: d for d in daemons.json()}
            assert (by_handle["ada"]["provider"], by_handle["ada"]["model"]) == (
                "anthropic",
                "claude-test",
            )
            assert (by_handle["bob"]["provider"], by_handle["bob"]["model"]) == (
                "openai",
                "llama-local",
            )

            runtime = (await live.http.get("/api/runtime/status", headers=bearer(admin))).json()
            assert set(runtime["generator"]["providers"]) == {"anthropic", "openai"}
            # A tenant's view names no address, key or other tenant's usage.
            assert local.url not in json.dumps(runtime)
            assert "sk-local" not in json.dumps(runtime)
            metrics = (await live.http.get("/metrics")).text
            for provider, model in (("anthropic", "claude-test"), ("openai", "llama-local")):
                assert any(
                    line.startswith("neolith_model_tokens_total{")
                    and f'provider="{provider}"' in line
                    and f'model="{model}"' in line
                    for line in metrics.splitlines()
                ), (provider, model)
            assert {
                (d["provider"], d["model"], d["daemons"]) for d in runtime["daemons_by_model"]
            } == {
                ("anthropic", "claude-test", 1),
                ("openai", "llama-local", 1),
            }

            report = (await live.http.get("/api/admin/usage", headers=bearer(admin))).json()
            rows = {(i["handle"], i["provider"], i["model"]): i for i in report["items"]}
            assert set(rows) == {
                ("ada", "anthropic", "claude-test"),
                ("bob", "openai", "llama-local"),
            }
            assert rows[("ada", "anthropic", "claude-test")]["input_tokens"] == INPUT_TOKENS
            assert rows[("bob", "openai", "llama-local")]["input_tokens"] == PROMPT_TOKENS
            assert rows[("bob", "openai", "llama-local")]["output_tokens"] == 6  # words
            assert report["totals"]["replies"] == 2
            assert report["budget"]["unlimited"] is True


async def test_a_charter_naming_a_provider_without_credentials_is_refused(
    live: Live, acme: Org
) -> None:
    admin = await login(live.http, "admin@acme.test")
    base = {"email": "bob@acme.test", "name": "Bob", "password": PASSWORD}
    created = await live.http.post(
        "/api/admin/orchestrators", json={**base, "charter": BOB_CHARTER}, headers=bearer(admin)
    )
    assert created.status_code == 422
    message = created.json()["error"]["message"]
    assert "model_settings.provider" in message and "OPENAI_API_KEY is not set" in message
    unknown = {**BOB_CHARTER, "model_settings": {"provider": "cohere"}}
    refused = await live.http.put(
        f"/api/admin/orchestrators/{acme.orchestrator_ids['ada']}/charter",
        json=unknown,
        headers=bearer(admin),
    )
    assert refused.status_code == 422
    assert "model_settings.provider" in refused.json()["error"]["message"]
    # Nothing changed: no Bob, and Ada's charter is as it was.
    listed = (await live.http.get("/api/admin/daemons", headers=bearer(admin))).json()
    assert [d["handle"] for d in listed] == ["ada"]
    ada = await live.http.get(
        f"/api/admin/orchestrators/{acme.orchestrator_ids['ada']}", headers=bearer(admin)
    )
    assert ada.json()["charter"]["model_settings"]["provider"] is None
    # Without a key the default provider falls back to the offline responder, and says so.
    assert listed[0]["provider"] == "offline"


async def test_past_the_monthly_budget_mentions_get_a_notice(
    database: Database, database_url: str
) -> None:
    org = await seed_org(database, "acme", ("ada",))
    async with ModelServer() as claude:
        claude.default = ok("Sure.", chunks=1)
        settings = e2e_settings(
            database_url,
            anthropic_api_key="test-key",
            anthropic_base_url=claude.url,
            org_monthly_token_budget=1,  # the first reply spends it
        )
        async with running(settings) as live:
            admin = await login(live.http, "admin@acme.test")
            pat = await login(live.http, "pat@acme.test")
            await login(live.http, "ada@acme.test")
            async with connected(live.url, admin) as admin_socket:
                replies = []
                for text in ("@ada first?", "@ada second?"):
                    posted = await live.http.post(
                        f"/api/channels/{org.channel_id}/messages",
                        json={"content": text},
                        headers=bearer(pat),
                    )
                    mention_id = posted.json()["id"]
                    [answer] = await eventually(
                        lambda mention_id=mention_id: _answers(live, pat, org, mention_id)
                    )
                    replies.append(answer)
                assert replies[0]["content"] == "Sure."
                notice = replies[1]
                assert notice["metadata"]["system"] is True
                assert "monthly token budget is spent" in notice["content"]
                assert len(claude.requests) == 1  # the second mention never reached the model

                def budget_events() -> list[Any]:
                    return [
                        e
                        for e in admin_socket.of("daemon:event")
                        if e["type"] == "daemon:budget-exhausted"
                    ]

                pushed = await eventually(budget_events)
                # Once; again only if the reply was cancelled (a daemon restart on a loaded
                # machine) between the push and the log and then retried.
                assert {e["budget"] for e in pushed} == {1}

            logged = (await live.http.get("/api/admin/events", headers=bearer(admin))).json()
            assert "daemon:budget-exhausted" in [e["type"] for e in logged["items"]]
            report = (await live.http.get("/api/admin/usage", headers=bearer(admin))).json()
            assert report["budget"]["exhausted"] is True
            assert report["budget"]["source"] == "default"
            assert report["totals"]["replies"] == 1
            bad = await live.http.get("/api/admin/usage?month=2026-13", headers=bearer(admin))
            assert bad.status_code == 422 and "month" in bad.json()["error"]["message"]
            not_admin = await live.http.get("/api/admin/usage", headers=bearer(pat))
            assert not_admin.status_code == 403


async def test_cli_refuses_a_provider_without_credentials_and_sets_budgets(
    tmp_path: Path, database_url: str, acme: Org
) -> None:
    run: dict[str, Any] = {"cwd": tmp_path, "database_url": database_url, "OPENAI_API_KEY": ""}
    charter = tmp_path / "bob.json"
    charter.write_text(json.dumps(BOB_CHARTER))
    refused = await cli(
        "create-user",
        "--org",
        "acme",
        "--email",
        "bob@acme.test",
        "--name",
        "Bob",
        "--password",
        PASSWORD,
        "--orchestrator",
        "--charter",
        str(charter),
        **run,
    )
    assert refused.code == 1
    assert "model_settings.provider" in refused.err and "OPENAI_API_KEY" in refused.err
    accepted = await cli(
        "create-user",
        "--org",
        "acme",
        "--email",
        "bob@acme.test",
        "--name",
        "Bob",
        "--password",
        PASSWORD,
        "--orchestrator",
        "--charter",
        str(charter),
        **{**run, "OPENAI_API_KEY": "sk-local"},
    )
    assert accepted.code == 0, accepted.err
    budget = await cli("set-budget", "acme", "250000", **run)
    assert budget.code == 0 and "250,000 tokens" in budget.out
    back = await cli("set-budget", "acme", "default", **run)
    assert back.code == 0 and "ORG_MONTHLY_TOKEN_BUDGET" in back.out
    bad = await cli("set-budget", "acme", "-5", **run)
    assert bad.code == 1 and "TOKENS" in bad.err
