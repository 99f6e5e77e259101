from __future__ import annotations

from typing import Any

import pytest

from neolith_orchestrator.ai.charter import Charter, parse_charter
from neolith_orchestrator.errors import ValidationFailed

FULL: dict[str, Any] = {
    "name": "Ada",
    "role": "Release manager",
    "discipline": "Engineering",
    "mission": "Ship safely, every week.",
    "personality": "Calm, precise, a little dry.",
    "instructions": ["Answer in under 120 words.", "Link the runbook when relevant."],
    "capabilities": ["release planning", "incident triage"],
    "model_settings": {
        "provider": "anthropic",
        "model": "claude-custom",
        "max_tokens": 512,
        "temperature": 0.2,
    },
}


def test_minimal_charter_gets_defaults() -> None:
    charter = parse_charter({"name": "Ada"})
    assert charter.name == "Ada"
    assert charter.role == ""
    assert charter.instructions == []
    assert charter.model_settings.model is None
    assert charter.model_settings.max_tokens is None


def test_full_charter_round_trips_through_config() -> None:
    charter = parse_charter(FULL)
    assert charter.to_config() == FULL
    assert parse_charter(charter.to_config()) == charter


def test_whitespace_is_stripped() -> None:
    charter = parse_charter({"name": "  Ada ", "role": " Release manager\n"})
    assert (charter.name, charter.role) == ("Ada", "Release manager")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"role": "x" * 201}, "role"),
        ({"discipline": "x" * 201}, "discipline"),
        ({"mission": "x" * 2_001}, "mission"),
        ({"personality": "x" * 1_001}, "personality"),
        ({"instructions": "be nice"}, "instructions"),
        ({"instructions": ["ok"] * 51}, "instructions"),
        ({"capabilities": ["ok"] * 51}, "capabilities"),
        ({"colour": "blue"}, "colour"),
        ({"model_settings": {"max_tokens": 0}}, "model_settings.max_tokens"),
        ({"model_settings": {"max_tokens": 100_000}}, "model_settings.max_tokens"),
        ({"model_settings": {"temperature": 1.5}}, "model_settings.temperature"),
        ({"model_settings": {"model": ""}}, "model_settings.model"),
        ({"model_settings": {"top_k": 5}}, "model_settings.top_k"),
        ({"model_settings": {"provider": "cohere"}}, "model_settings.provider"),
    ],
)
def test_invalid_charter_names_the_field(change: dict[str, Any], field: str) -> None:
    data = {**FULL, **change}
    if change.get("name", "") is None:
        del data["name"]
    with pytest.raises(ValidationFailed) as caught:
        parse_charter(data)
    assert caught.value.message.startswith("invalid charter: ")
    assert f"{field}:" in caught.value.message
    assert caught.value.status_code == 422


@pytest.mark.parametrize(
    ("field", "items", "where"),
    [
        ("instructions", ["fine", "   "], "instructions.1"),
        ("instructions", ["x" * 1_001], "instructions.0"),
        ("capabilities", ["fine", "also fine", ""], "capabilities.2"),
    ],
)
def test_list_items_are_bounded(field: str, items: list[str], where: str) -> None:
    with pytest.raises(ValidationFailed, match=rf"{where}: must be 1 to 1000 characters"):
        parse_charter({"name": "Ada", field: items})


@pytest.mark.parametrize("data", [None, "Ada", ["Ada"], 42])
def test_non_object_is_refused(data: Any) -> None:
    with pytest.raises(ValidationFailed, match="invalid charter"):
        parse_charter(data)


def test_largest_valid_charter_is_accepted() -> None:
    charter = parse_charter(
        {
            "name": "x" * 100,
            "mission": "m" * 2_000,
            "personality": "p" * 1_000,
            "instructions": ["i" * 1_000] * 50,
            "capabilities": ["c" * 1_000] * 50,
        }
    )
    assert isinstance(charter, Charter)
    assert len(charter.instructions) == 50
