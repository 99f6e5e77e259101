"""The Anthropic generator, driven through the real SDK against the test model server."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from neolith_orchestrator.ai.anthropic_provider import AnthropicGenerator
from neolith_orchestrator.ai.limits import ModelLimits
from neolith_orchestrator.config import Settings
from neolith_orchestrator.errors import ModelError, ModelPermanentError
from tests.conftest import make_settings
from tests.support.model_server import (
    INPUT_TOKENS,
    ModelServer,
    RecordingSink,
    cut,
    ok,
    reply_request,
    slow,
    status,
    stream_error,
)

CHARTER = {
    "name": "Ada",
    "role": "Release manager",
    "discipline": "Engineering",
    "mission": "Ship safely, every week.",
    "instructions": ["Answer in under 120 words."],
}


@pytest.fixture
async def server() -> AsyncIterator[ModelServer]:
    async with ModelServer() as running:
        yield running


def settings_for(server: ModelServer, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "anthropic_api_key": "test-key",
        "anthropic_base_url": server.url,
        "anthropic_model": "claude-test",
        "anthropic_max_tokens": 321,
        "anthropic_retry_backoff_initial": 10,
        "anthropic_retry_backoff_max": 2_000,
        "anthropic_stream_idle_timeout": 2_000,
        "anthropic_connect_timeout": 2_000,
    }
    values.update(overrides)
    return make_settings("sqlite+aiosqlite:///unused.db", **values)


@pytest.fixture
async def generator(server: ModelServer) -> AsyncIterator[AnthropicGenerator]:
    gen = AnthropicGenerator(settings_for(server))
    yield gen
    await gen.aclose()


async def test_reply_streams_and_sends_the_prompt(
    server: ModelServer, generator: AnthropicGenerator
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
    assert result.model == "claude-test"
    assert result.stop_reason == "end_turn"
    assert result.usage == {"input_tokens": INPUT_TOKENS, "output_tokens": 3}
    assert not result.offline
    assert [kind for kind, _ in sink.events] == ["delta", "delta", "delta"]
    assert sink.text == result.text

    [received] = server.requests
    body = received.body
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == 321
    assert body["stream"] is True
    assert "temperature" not in body
    assert body["system"].startswith("You are Ada, Release manager, Engineering")
    assert "Mission: Ship safely, every week." in body["system"]
    assert "- Answer in under 120 words." in body["system"]
    assert "@ada" in body["system"]
    assert "CI passed" not in body["system"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert "[Alice]: morning" in body["messages"][0]["content"]
    assert body["messages"][1]["content"] == "Morning!"
    assert (
        body["messages"][2]["content"] == "[Bob]: CI passed\n\n[Carol]: @ada is the release green?"
    )
    assert received.headers["authorization"] == "Bearer test-key"
    assert received.headers["x-stainless-retry-count"] == "0"


async def test_charter_model_settings_override_the_defaults(
    server: ModelServer, generator: AnthropicGenerator, caplog: pytest.LogCaptureFixture
) -> None:
    charter = {
        **CHARTER,
        "model_settings": {"model": "claude-special", "max_tokens": 99, "temperature": 0.3},
    }
    with caplog.at_level(logging.WARNING, logger="neolith_orchestrator.ai"):
        for _ in range(2):
            result = await generator.generate(reply_request(charter=charter), RecordingSink())
    assert result.model == "claude-special"
    assert [(r.body["model"], r.body["max_tokens"]) for r in server.requests] == [
        ("claude-special", 99)
    ] * 2
    # The current API refuses sampling parameters: never sent, said once in the log.
    assert all("temperature" not in r.body for r in server.requests)
    assert sum("temperature is ignored" in r.getMessage() for r in caplog.records) == 1


async def test_a_retiring_model_is_logged_once_not_warned(
    server: ModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The SDK raises a DeprecationWarning for this model; warnings are errors in this suite.
    gen = AnthropicGenerator(settings_for(server, anthropic_model="claude-sonnet-4-5"))
    try:
        with caplog.at_level(logging.WARNING, logger="neolith_orchestrator.ai"):
            await gen.generate(reply_request(), RecordingSink())
            await gen.generate(reply_request(), RecordingSink())
    finally:
        await gen.aclose()
    assert [r.body["model"] for r in server.requests] == ["claude-sonnet-4-5"] * 2
    notes = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(notes) == 1
    assert "claude-sonnet-4-5" in notes[0]


async def test_429_waits_for_retry_after(
    server: ModelServer, generator: AnthropicGenerator
) -> None:
    server.script(status(429, retry_after=0.4), ok("after the wait"))
    started = time.monotonic()
    result = await generator.generate(reply_request(), RecordingSink())
    assert result.text == "after the wait"
    assert time.monotonic() - started >= 0.35
    assert len(server.requests) == 2


@pytest.mark.parametrize("code", [500, 503, 529])
async def test_server_errors_are_retried(
    server: ModelServer, generator: AnthropicGenerator, code: int
) -> None:
    server.script(status(code), ok("second time lucky"))
    sink = RecordingSink()
    result = await generator.generate(reply_request(), sink)
    assert result.text == "second time lucky"
    assert len(server.requests) == 2
    assert sink.resets == 0


@pytest.mark.parametrize(
    "failure",
    [
        status(401),
        status(402),
        status(403),
        status(429, error_code="enforced_spend_limit_reached"),
        status(400, error_type="billing_error"),
    ],
)
async def test_permanent_failures_are_not_retried(
    server: ModelServer, generator: AnthropicGenerator, failure: Any
) -> None:
    server.script(failure, ok("never asked for"))
    with pytest.raises(ModelPermanentError, match="refused our key or budget"):
        await generator.generate(reply_request(), RecordingSink())
    assert len(server.requests) == 1


async def test_a_bad_request_fails_at_once_without_being_permanent(
    server: ModelServer, generator: AnthropicGenerator
) -> None:
    server.script(status(400), ok("never asked for"))
    with pytest.raises(ModelError, match="rejected the request") as caught:
        await generator.generate(reply_request(), RecordingSink())
    assert not isinstance(caught.value, ModelPermanentError)
    assert len(server.requests) == 1


async def test_a_cut_stream_is_retried_and_the_half_reply_reset(
    server: ModelServer, generator: AnthropicGenerator
) -> None:
    server.script(cut("The first try gets cut.", after=2), ok("The whole reply.", chunks=2))
    sink = RecordingSink()
    result = await generator.generate(reply_request(), sink)
    assert [kind for kind, _ in sink.events] == ["delta", "delta", "reset", "delta", "delta"]
    assert sink.text == result.text == "The whole reply."
    assert len(server.requests) == 2


async def test_an_error_event_mid_stream_is_retried(
    server: ModelServer, generator: AnthropicGenerator
) -> None:
    server.script(stream_error("overloaded_error", after=1), ok("Recovered."))
    sink = RecordingSink()
    result = await generator.generate(reply_request(), sink)
    assert sink.resets == 1
    assert sink.text == result.text == "Recovered."


async def test_exhausted_retries_raise_model_error(server: ModelServer) -> None:
    server.default = status(500)
    gen = AnthropicGenerator(settings_for(server, anthropic_max_retries=2))
    try:
        with pytest.raises(ModelError, match=r"no reply after 3 attempt\(s\).*HTTP 500") as caught:
            await gen.generate(reply_request(), RecordingSink())
    finally:
        await gen.aclose()
    assert not isinstance(caught.value, ModelPermanentError)
    assert len(server.requests) == 3


async def test_a_cut_on_the_last_attempt_leaves_the_sink_reset(server: ModelServer) -> None:
    server.default = cut(after=1)
    gen = AnthropicGenerator(settings_for(server, anthropic_max_retries=1))
    sink = RecordingSink()
    try:
        with pytest.raises(ModelError, match="stream broke"):
            await gen.generate(reply_request(), sink)
    finally:
        await gen.aclose()
    assert sink.resets == 2
    assert sink.text == ""


async def test_an_idle_stream_times_out_and_is_retried(server: ModelServer) -> None:
    server.script(slow(delay=1.5), ok("Quick this time."))
    gen = AnthropicGenerator(settings_for(server, anthropic_stream_idle_timeout=300))
    try:
        result = await gen.generate(reply_request(), RecordingSink())
    finally:
        await gen.aclose()
    assert result.text == "Quick this time."
    assert len(server.requests) == 2


async def test_an_idle_stream_with_no_retries_left_says_so(server: ModelServer) -> None:
    server.script(slow(delay=1.5))
    gen = AnthropicGenerator(
        settings_for(server, anthropic_stream_idle_timeout=300, anthropic_max_retries=0)
    )
    try:
        with pytest.raises(ModelError, match=r"idle for 0\.3s"):
            await gen.generate(reply_request(), RecordingSink())
    finally:
        await gen.aclose()


async def test_a_retry_after_beyond_the_cap_fails_at_once(
    server: ModelServer, generator: AnthropicGenerator
) -> None:
    server.script(status(429, retry_after=600))
    started = time.monotonic()
    with pytest.raises(ModelError, match="wait 600s"):
        await generator.generate(reply_request(), RecordingSink())
    assert time.monotonic() - started < 5
    assert len(server.requests) == 1


async def test_an_unreachable_provider_is_retried_then_fails() -> None:
    async with ModelServer() as gone:
        url = gone.url
    settings = make_settings(
        "sqlite+aiosqlite:///unused.db",
        anthropic_api_key="test-key",
        anthropic_base_url=url,
        anthropic_max_retries=1,
        anthropic_retry_backoff_initial=10,
    )
    gen = AnthropicGenerator(settings)
    try:
        with pytest.raises(ModelError, match=r"no reply after 2 attempt.*could not connect"):
            await gen.generate(reply_request(), RecordingSink())
    finally:
        await gen.aclose()


async def test_an_invalid_charter_is_a_model_error_naming_the_field(
    generator: AnthropicGenerator, server: ModelServer
) -> None:
    with pytest.raises(ModelError, match="invalid charter: name"):
        await generator.generate(reply_request(charter={"role": "nameless"}), RecordingSink())
    assert server.requests == []


async def test_one_org_flooding_does_not_starve_another(server: ModelServer) -> None:
    server.default = ok("Working on it.", chunks=4, delay=0.05)
    limits = ModelLimits(global_limit=3, per_org_limit=2)
    gen = AnthropicGenerator(settings_for(server), limits=limits)
    org_a, org_b = uuid.uuid4(), uuid.uuid4()
    try:
        flood = [
            asyncio.create_task(
                gen.generate(reply_request(organization_id=org_a), RecordingSink()), name=f"a{i}"
            )
            for i in range(6)
        ]
        await asyncio.sleep(0.1)
        assert limits.org_usage(org_a) == (2, 4)
        await gen.generate(reply_request(organization_id=org_b), RecordingSink())
        assert sum(task.done() for task in flood) < 6  # B was served while A still queued
        await asyncio.gather(*flood)
    finally:
        await gen.aclose()
    assert server.max_in_flight <= 3
    assert len(server.requests) == 7
    assert limits.snapshot().orgs_active == 0
    assert limits.snapshot().global_in_use == 0


async def test_a_cancelled_reply_releases_its_slots(server: ModelServer) -> None:
    server.default = slow(delay=0.5)
    limits = ModelLimits(global_limit=1, per_org_limit=1)
    gen = AnthropicGenerator(settings_for(server), limits=limits)
    try:
        task = asyncio.create_task(gen.generate(reply_request(), RecordingSink()), name="reply")
        await asyncio.sleep(0.2)
        assert limits.snapshot().global_in_use == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert limits.snapshot().global_in_use == 0
        assert limits.snapshot().orgs_active == 0
    finally:
        await gen.aclose()


async def test_describe_reports_provider_model_and_limits(generator: AnthropicGenerator) -> None:
    described = generator.describe()
    assert described["provider"] == "anthropic"
    assert described["model"] == "claude-test"
    assert described["offline"] is False
    assert described["limits"]["global_in_use"] == 0
    assert "test-key" not in repr(described)


async def test_the_server_also_answers_without_streaming(server: ModelServer) -> None:
    server.script(ok("Plain JSON."))
    client = anthropic.AsyncAnthropic(api_key="test-key", base_url=server.url, max_retries=0)
    try:
        message = await client.messages.create(
            model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    finally:
        await client.close()
    assert [block.text for block in message.content if block.type == "text"] == ["Plain JSON."]
    assert server.requests[0].body.get("stream") is None


async def test_nothing_is_left_running_after_close(server: ModelServer) -> None:
    server.script(slow(delay=1.0))
    gen = AnthropicGenerator(
        settings_for(server, anthropic_stream_idle_timeout=200, anthropic_max_retries=0)
    )
    with pytest.raises(ModelError):
        await gen.generate(reply_request(), RecordingSink())
    await gen.aclose()
    await server.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}
