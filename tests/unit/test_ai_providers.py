"""Which provider answers for a charter, the credentials check on save, and the router."""

from __future__ import annotations

from typing import Any

import pytest

from neolith_orchestrator.ai.charter import parse_charter
from neolith_orchestrator.ai.offline import OfflineResponder
from neolith_orchestrator.ai.providers import model_choice, require_credentials
from neolith_orchestrator.ai.router import ProviderRouter
from neolith_orchestrator.errors import ModelError, ValidationFailed
from tests.conftest import make_settings
from tests.support.generators import ScriptedGenerator
from tests.support.model_server import RecordingSink, reply_request

URL = "sqlite+aiosqlite:///unused.db"
NO_KEYS = make_settings(URL)
ANTHROPIC_ONLY = make_settings(URL, anthropic_api_key="sk-a", anthropic_model="claude-x")
BOTH = make_settings(URL, anthropic_api_key="sk-a", openai_api_key="sk-o", openai_model="gpt-x")


def _charter(**model_settings: Any) -> dict[str, Any]:
    return {"name": "Ada", "model_settings": model_settings}


def test_an_unknown_provider_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationFailed, match=r"model_settings\.provider: Input should be"):
        parse_charter(_charter(provider="cohere"))


def test_a_named_provider_without_credentials_is_refused_naming_field_and_setting() -> None:
    charter = parse_charter(_charter(provider="openai"))
    with pytest.raises(ValidationFailed) as caught:
        require_credentials(charter, ANTHROPIC_ONLY)
    assert "model_settings.provider" in caught.value.message
    assert "OPENAI_API_KEY is not set" in caught.value.message
    with pytest.raises(ValidationFailed, match="ANTHROPIC_API_KEY is not set"):
        require_credentials(parse_charter(_charter(provider="anthropic")), NO_KEYS)
    require_credentials(charter, BOTH)


def test_an_unnamed_provider_is_always_accepted() -> None:
    # Without ANTHROPIC_API_KEY the offline responder answers it, and says so.
    require_credentials(parse_charter(_charter()), NO_KEYS)


@pytest.mark.parametrize(
    ("settings", "model_settings", "expected"),
    [
        (BOTH, {}, ("anthropic", "claude-sonnet-5-5", True)),
        (ANTHROPIC_ONLY, {}, ("anthropic", "claude-x", True)),
        (BOTH, {"provider": "openai"}, ("openai", "gpt-x", True)),
        (BOTH, {"provider": "openai", "model": "llama3"}, ("openai", "llama3", True)),
        (NO_KEYS, {}, ("offline", "offline", True)),
        (ANTHROPIC_ONLY, {"provider": "openai"}, ("openai", "gpt-5-mini", False)),
    ],
)
def test_model_choice_for_the_daemon_status(
    settings: Any, model_settings: dict[str, Any], expected: tuple[str, str, bool]
) -> None:
    choice = model_choice(_charter(**model_settings), settings)
    assert (choice["provider"], choice["model"], choice["provider_configured"]) == expected


async def test_the_router_sends_each_charter_to_its_provider_and_counts_usage() -> None:
    claude, gpt = ScriptedGenerator(name="anthropic"), ScriptedGenerator(name="openai")
    router = ProviderRouter({"anthropic": claude, "openai": gpt}, OfflineResponder())
    await router.generate(reply_request(charter=_charter()), RecordingSink())
    await router.generate(reply_request(charter=_charter(provider="openai")), RecordingSink())
    await router.generate(reply_request(charter=_charter(provider="openai")), RecordingSink())
    assert (len(claude.calls), len(gpt.calls)) == (1, 2)
    usage = {
        (u.provider, u.model): (u.replies, u.input_tokens, u.output_tokens) for u in router.usage()
    }
    # The scripted generator predates ReplyResult.provider: the router names it.
    assert usage == {("anthropic", "scripted-1"): (1, 10, 5), ("openai", "scripted-1"): (2, 20, 10)}
    assert router.describe()["usage"][1]["replies"] == 2


async def test_the_router_answers_unnamed_charters_offline_and_refuses_missing_providers() -> None:
    gpt = ScriptedGenerator(name="openai")
    router = ProviderRouter({"openai": gpt}, OfflineResponder())
    result = await router.generate(reply_request(charter=_charter()), RecordingSink())
    assert result.offline and result.provider == "offline"
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY is not set"):
        await router.generate(
            reply_request(charter=_charter(provider="anthropic")), RecordingSink()
        )
    with pytest.raises(ModelError, match="invalid charter: name"):
        await router.generate(reply_request(charter={"role": "nameless"}), RecordingSink())
    assert gpt.calls == []
