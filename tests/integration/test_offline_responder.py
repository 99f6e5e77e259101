"""The offline responder: the product answers without a key, and says so every time."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from neolith_orchestrator.ai.factory import build_generator, describe_generator
from neolith_orchestrator.ai.offline import OFFLINE_LABEL, OfflineResponder
from tests.conftest import make_settings
from tests.support.model_server import RecordingSink, reply_request

CHARTERS: list[dict[str, Any]] = [
    {"name": "Ada"},
    {
        "name": "Ada",
        "role": "Release manager",
        "discipline": "Engineering",
        "mission": "Ship safely, every week.",
        "capabilities": ["release planning", "incident triage"],
    },
    {"role": "no name: invalid"},
]


@pytest.mark.parametrize("charter", CHARTERS)
async def test_every_reply_is_labelled_offline_and_streamed(charter: dict[str, Any]) -> None:
    responder = OfflineResponder()
    sink = RecordingSink()
    result = await responder.generate(reply_request("@ada status?", charter=charter), sink)

    assert result.text.startswith(OFFLINE_LABEL)
    assert sink.events[0][1].startswith(OFFLINE_LABEL)  # even a half-shown stream says so
    assert OFFLINE_LABEL == "[offline responder — no ANTHROPIC_API_KEY set]"
    assert result.offline is True
    assert result.model == "offline"
    assert result.stop_reason == "end_turn"
    assert 2 <= len(sink.events) <= 6
    assert {kind for kind, _ in sink.events} == {"delta"}
    assert sink.text == result.text
    assert "Ada" in result.text
    assert "Alice" in result.text
    assert "@ada status?" in result.text
    assert "ANTHROPIC_API_KEY" in result.text


async def test_reply_comes_from_the_charter() -> None:
    result = await OfflineResponder().generate(reply_request(charter=CHARTERS[1]), RecordingSink())
    assert "Ada (Release manager, Engineering)" in result.text
    assert "Ship safely, every week." in result.text
    assert "release planning; incident triage" in result.text


async def test_replies_are_deterministic() -> None:
    responder = OfflineResponder()
    request = reply_request("@ada what now?", charter=CHARTERS[1])
    first, second = RecordingSink(), RecordingSink()
    assert await responder.generate(request, first) == await responder.generate(request, second)
    assert first.events == second.events


async def test_a_long_mention_is_quoted_in_short() -> None:
    result = await OfflineResponder().generate(
        reply_request("@ada " + "word " * 200), RecordingSink()
    )
    assert "…”" in result.text
    assert len(result.text) < 1_000


async def test_no_key_builds_the_offline_responder_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db")
    with caplog.at_level(logging.WARNING, logger="neolith_orchestrator.ai"):
        generator = build_generator(settings)
    assert isinstance(generator, OfflineResponder)
    assert generator.name == "offline"
    assert any(
        r.levelno == logging.WARNING and "offline responder" in r.getMessage()
        for r in caplog.records
    )
    assert describe_generator(generator) == {
        "provider": "offline",
        "model": "offline",
        "offline": True,
        "limits": None,
    }
    await generator.aclose()
