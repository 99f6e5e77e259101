from __future__ import annotations

import logging

import pytest

from neolith_orchestrator.ai.anthropic_provider import AnthropicGenerator
from neolith_orchestrator.ai.factory import build_generator, describe_generator
from neolith_orchestrator.ai.generator import ReplyRequest, ReplyResult, ReplySink
from neolith_orchestrator.ai.limits import ModelLimits
from neolith_orchestrator.ai.offline import OfflineResponder
from neolith_orchestrator.ai.openai_provider import OpenAIGenerator
from neolith_orchestrator.ai.router import ProviderRouter
from tests.conftest import make_settings

URL = "sqlite+aiosqlite:///unused.db"


async def test_both_keys_build_both_generators_behind_one_router(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        URL,
        anthropic_api_key="sk-test",
        anthropic_model="claude-x",
        openai_api_key="sk-openai",
        openai_model="gpt-x",
        openai_base_url="http://127.0.0.1:9/v1",
    )
    limits = ModelLimits(global_limit=5, per_org_limit=2)
    with caplog.at_level(logging.INFO, logger="neolith_orchestrator.ai"):
        generator = build_generator(settings, limits=limits)
    try:
        assert isinstance(generator, ProviderRouter)
        anthropic_gen = generator.generators["anthropic"]
        openai_gen = generator.generators["openai"]
        assert isinstance(anthropic_gen, AnthropicGenerator)
        assert isinstance(openai_gen, OpenAIGenerator)
        # One set of fair-use slots for both providers.
        assert anthropic_gen.limits is limits
        assert openai_gen.limits is limits
        assert isinstance(generator.fallback, OfflineResponder)
        assert not any(r.levelno >= logging.WARNING for r in caplog.records)
        described = describe_generator(generator)
        assert described["provider"] == "anthropic"
        assert described["model"] == "claude-x"
        assert described["offline"] is False
        assert described["limits"]["global_limit"] == 5
        assert described["limits"]["per_org_limit"] == 2
        assert described["default_provider"] == "anthropic"
        assert described["providers"]["openai"]["model"] == "gpt-x"
        assert described["providers"]["openai"]["base_url"] == "http://127.0.0.1:9/v1"
        assert described["usage"] == []
        assert "sk-test" not in repr(described)
        assert "sk-openai" not in repr(described)
    finally:
        await generator.aclose()


def test_blank_keys_mean_offline() -> None:
    generator = build_generator(make_settings(URL, anthropic_api_key="", openai_api_key=""))
    assert isinstance(generator, OfflineResponder)


async def test_only_an_openai_key_routes_unnamed_charters_offline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="neolith_orchestrator.ai"):
        generator = build_generator(make_settings(URL, openai_api_key="sk-openai"))
    try:
        assert isinstance(generator, ProviderRouter)
        assert set(generator.generators) == {"openai"}
        assert describe_generator(generator)["provider"] == "offline"
        assert any("ANTHROPIC_API_KEY is not set" in r.getMessage() for r in caplog.records)
    finally:
        await generator.aclose()


def test_anthropic_generator_refuses_to_run_without_a_key() -> None:
    with pytest.raises(ValueError, match="ANTHROPIC_API_KEY"):
        AnthropicGenerator(make_settings(URL))


class _Custom:
    name = "custom"

    async def generate(self, request: ReplyRequest, sink: ReplySink) -> ReplyResult:
        return ReplyResult(text="hi", model="m")

    async def aclose(self) -> None:
        return None


def test_describe_a_generator_without_describe() -> None:
    assert describe_generator(_Custom()) == {
        "provider": "custom",
        "model": None,
        "offline": False,
        "limits": None,
    }
