from __future__ import annotations

import logging

import pytest

from neolith_orchestrator.ai.anthropic_provider import AnthropicGenerator
from neolith_orchestrator.ai.factory import build_generator, describe_generator
from neolith_orchestrator.ai.generator import ReplyRequest, ReplyResult, ReplySink
from neolith_orchestrator.ai.limits import ModelLimits
from neolith_orchestrator.ai.offline import OfflineResponder
from tests.conftest import make_settings

URL = "sqlite+aiosqlite:///unused.db"


async def test_a_key_always_builds_the_anthropic_generator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(URL, anthropic_api_key="sk-test", anthropic_model="claude-x")
    limits = ModelLimits(global_limit=5, per_org_limit=2)
    with caplog.at_level(logging.INFO, logger="neolith_orchestrator.ai"):
        generator = build_generator(settings, limits=limits)
    try:
        assert isinstance(generator, AnthropicGenerator)
        assert generator.name == "anthropic"
        assert generator.limits is limits
        assert not any(r.levelno >= logging.WARNING for r in caplog.records)
        described = describe_generator(generator)
        assert described["provider"] == "anthropic"
        assert described["model"] == "claude-x"
        assert described["offline"] is False
        assert described["limits"]["global_limit"] == 5
        assert described["limits"]["per_org_limit"] == 2
        assert "sk-test" not in repr(described)
    finally:
        await generator.aclose()


def test_blank_key_means_offline() -> None:
    generator = build_generator(make_settings(URL, anthropic_api_key=""))
    assert isinstance(generator, OfflineResponder)


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
