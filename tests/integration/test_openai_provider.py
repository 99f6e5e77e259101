"""The OpenAI-compatible generator, driven through the real `openai` SDK against the loopback
Chat Completions server: streaming, usage, and the same fault policy as the Anthropic one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from neolith_orchestrator.ai.openai_provider import OpenAIGenerator
from neolith_orchestrator.config import Settings
from neolith_orchestrator.errors import ModelError, ModelPermanentError
from tests.conftest import make_settings
from tests.support.model_server import RecordingSink, cut, ok, reply_request, slow, status
from tests.support.model_server import stream_error as stream_error_
from tests.support.openai_server import PROMPT_TOKENS, OpenAIServer

CHARTER = {
    "name": "Ada",
    "role": "Release manager",
    "discipline": "Engineering",
    "mission": "Ship safely, every week.",
    "instructions": ["Answer in under 120 words."],
    "model_settings": {"provider": "openai"},
}


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with OpenAIServer() as running:
        yield running


def settings_for(server: OpenAIServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "openai_api_key": "sk-test",
        "openai_base_url": server.url,
        "openai_model": "gpt-test",
        "openai_max_tokens": 321,
        "openai_retry_backoff_initial": 10,
        "openai_retry_backoff_max": 2_000,
        "openai_stream_idle_timeout": 2_000,
        "openai_connect_timeout": 2_000,
    }
    values.update(overrides)
    return make_settings("sqlite+aiosqlite:///unused.db", **values)


@pytest.fixture
async def generator(server: OpenAIServer) -> AsyncIterator[OpenAIGenerator]:
    gen = OpenAIGenerator(settings_for(server))
    yield gen
    await gen.aclose()


async def test_reply_streams_and_sends_the_prompt(
    server: OpenAIServer, generator: OpenAIGenerator
) -> None:
    server.script(ok("The release is green.", chunks=3))
    sink = RecordingSink()
    request = reply_request(
        "@ada is the release green?",
        author="Carol",
        charter=CHARTER,
        history=(("Alice", "morning"), ("Ada", "Morning!"), ("Bob", "CI passed")),
    )
    result = await generator.generate(request, sink)

    assert result.text == "The release is green."
    assert result.model == "gpt-test"
    assert result.provider == "openai"
    assert result.stop_reason == "stop"
    assert result.usage == {"input_tokens": PROMPT_TOKENS, "output_tokens": 4}
    assert [kind for kind, _ in sink.events] == ["delta", "delta", "delta"]
    assert sink.text == result.text

    [received] = server.requests
    body = received.body
    assert body["model"] == "gpt-test"
    assert body["max_completion_tokens"] == 321
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "temperature" not in body
    messages = body["messages"]
    # The charter is the system message; channel text only ever arrives as user turns.
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    system = messages[0]["content"]
    assert system.startswith("You are Ada, Release manager, Engineering")
    assert "Mission: Ship safely, every week." in system
    assert "CI passed" not in system
    assert "[Alice]: morning" in messages[1]["content"]
    assert messages[2]["content"] == "Morning!"
    assert messages[3]["content"] == "[Bob]: CI passed\n\n[Carol]: @ada is the release green?"
    assert received.headers["authorization"] == "Bearer sk-test"
    assert received.headers["x-stainless-retry-count"] == "0"


async def test_charter_model_settings_override_the_defaults(
    server: OpenAIServer, generator: OpenAIGenerator
) -> None:
    charter = {
        **CHARTER,
        "model_settings": {
            "provider": "openai",
            "model": "llama-local",
            "max_tokens": 99,
            "temperature": 0.3,
        },
    }
    result = await generator.generate(reply_request(charter=charter), RecordingSink())
    assert result.model == "llama-local"
    [received] = server.requests
    assert received.body["model"] == "llama-local"
    assert received.body["max_completion_tokens"] == 99
    assert received.body["temperature"] == 0.3


async def test_429_waits_for_retry_after(server: OpenAIServer, generator: OpenAIGenerator) -> None:
    server.script(status(429, retry_after=0.4), ok("after the wait"))
    started = time.monotonic()
    result = await generator.generate(reply_request(charter=CHARTER), RecordingSink())
    assert result.text == "after the wait"
    assert time.monotonic() - started >= 0.35
    assert len(server.requests) == 2


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_server_errors_are_retried(
    server: OpenAIServer, generator: OpenAIGenerator, code: int
) -> None:
    server.script(status(code), ok("second time lucky"))
    sink = RecordingSink()
    result = await generator.generate(reply_request(charter=CHARTER), sink)
    assert result.text == "second time lucky"
    assert len(server.requests) == 2
    assert sink.resets == 0


@pytest.mark.parametrize(
    "failure",
    [status(401), status(403), status(429, error_code="insufficient_quota")],
)
async def test_permanent_failures_are_not_retried(
    server: OpenAIServer, generator: OpenAIGenerator, failure: Any
) -> None:
    server.script(failure, ok("never asked for"))
    with pytest.raises(ModelPermanentError, match="refused our key or budget"):
        await generator.generate(reply_request(charter=CHARTER), RecordingSink())
    assert len(server.requests) == 1


async def test_an_unknown_model_fails_at_once_without_being_permanent(
    server: OpenAIServer, generator: OpenAIGenerator
) -> None:
    server.script(status(404), ok("never asked for"))
    with pytest.raises(ModelError, match=r"rejected the request.*model_not_found") as caught:
        await generator.generate(reply_request(charter=CHARTER), RecordingSink())
    assert not isinstance(caught.value, ModelPermanentError)
    assert len(server.requests) == 1


async def test_a_cut_stream_is_retried_and_the_half_reply_reset(
    server: OpenAIServer, generator: OpenAIGenerator
) -> None:
    server.script(cut("The first try gets cut.", after=2), ok("The whole reply.", chunks=2))
    sink = RecordingSink()
    result = await generator.generate(reply_request(charter=CHARTER), sink)
    assert [kind for kind, _ in sink.events] == ["delta", "delta", "reset", "delta", "delta"]
    assert sink.text == result.text == "The whole reply."
    assert len(server.requests) == 2


async def test_an_error_object_mid_stream_is_retried(
    server: OpenAIServer, generator: OpenAIGenerator
) -> None:
    server.script(stream_error_("server_error", after=1), ok("Recovered."))
    sink = RecordingSink()
    result = await generator.generate(reply_request(charter=CHARTER), sink)
    assert sink.resets == 1
    assert sink.text == result.text == "Recovered."


async def test_exhausted_retries_raise_model_error(server: OpenAIServer) -> None:
    server.default = status(500)
    gen = OpenAIGenerator(settings_for(server, openai_max_retries=2))
    try:
        with pytest.raises(ModelError, match=r"no reply after 3 attempt\(s\).*HTTP 500") as caught:
            await gen.generate(reply_request(charter=CHARTER), RecordingSink())
    finally:
        await gen.aclose()
    assert not isinstance(caught.value, ModelPermanentError)
    assert len(server.requests) == 3


async def test_a_cut_on_the_last_attempt_leaves_the_sink_reset(server: OpenAIServer) -> None:
    server.default = cut(after=1)
    gen = OpenAIGenerator(settings_for(server, openai_max_retries=1))
    sink = RecordingSink()
    try:
        with pytest.raises(ModelError, match="no reply after 2 attempt"):
            await gen.generate(reply_request(charter=CHARTER), sink)
    finally:
        await gen.aclose()
    assert sink.resets == 2
    assert sink.text == ""


async def test_an_idle_stream_times_out_and_is_retried(server: OpenAIServer) -> None:
    server.script(slow(delay=1.5), ok("Quick this time."))
    gen = OpenAIGenerator(settings_for(server, openai_stream_idle_timeout=300))
    try:
        result = await gen.generate(reply_request(charter=CHARTER), RecordingSink())
    finally:
        await gen.aclose()
    assert result.text == "Quick this time."
    assert len(server.requests) == 2


async def test_a_retry_after_beyond_the_cap_fails_at_once_naming_the_setting(
    server: OpenAIServer, generator: OpenAIGenerator
) -> None:
    server.script(status(429, retry_after=600))
    with pytest.raises(ModelError, match="wait 600s, more than OPENAI_RETRY_BACKOFF_MAX"):
        await generator.generate(reply_request(charter=CHARTER), RecordingSink())
    assert len(server.requests) == 1


async def test_an_unreachable_server_is_retried_then_fails() -> None:
    async with OpenAIServer() as gone:
        url = gone.url
    gen = OpenAIGenerator(
        make_settings(
            "sqlite+aiosqlite:///unused.db",
            openai_api_key="sk-test",
            openai_base_url=url,
            openai_max_retries=1,
            openai_retry_backoff_initial=10,
        )
    )
    try:
        with pytest.raises(ModelError, match=r"no reply after 2 attempt.*could not connect"):
            await gen.generate(reply_request(charter=CHARTER), RecordingSink())
    finally:
        await gen.aclose()


def test_the_generator_refuses_to_run_without_a_key() -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIGenerator(make_settings("sqlite+aiosqlite:///unused.db"))


async def test_describe_names_provider_model_and_endpoint(
    server: OpenAIServer, generator: OpenAIGenerator
) -> None:
    described = generator.describe()
    assert described["provider"] == "openai"
    assert described["model"] == "gpt-test"
    assert described["base_url"] == server.url
    assert "sk-test" not in repr(described)


async def test_nothing_is_left_running_after_close(server: OpenAIServer) -> None:
    server.script(slow(delay=1.0))
    gen = OpenAIGenerator(
        settings_for(server, openai_stream_idle_timeout=200, openai_max_retries=0)
    )
    with pytest.raises(ModelError):
        await gen.generate(reply_request(charter=CHARTER), RecordingSink())
    await gen.aclose()
    await server.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}
