from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from neolith_orchestrator.ai.charter import Charter, Personality, parse_charter
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
        ({"instructions": 7}, "instructions"),
        ({"values": "honesty"}, "values"),
        ({"vision": "v" * 2_001}, "vision"),
        ({"personality": {"trait": ["calm"]}}, "personality.trait"),
        ({"personality": {"traits": "calm"}}, "personality.traits"),
        ({"personality": 5}, "personality"),
        ({"communicationPreferences": {"tone": {"deep": 1}}}, "communicationPreferences"),
        ({"operationalSettings": "x" * 2_001}, "operationalSettings"),
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


EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "charter.example.json"
NEOLITH: dict[str, Any] = {
    "name": "Grace",
    "mission": "Ship safely.",
    "vision": "Release any day without fear.",
    "values": ["Safety before speed", "Write it down"],
    "expertise": ["release planning"],
    "personality": {
        "traits": ["calm", "precise"],
        "communicationStyle": "Short answers first.",
        "decisionMakingStyle": "Weighs the risk.",
        "background": "Six years of releases.",
    },
    "communicationPreferences": {"tone": "direct", "useBulletPoints": True},
    "operationalSettings": {"workingHours": "09:00-18:00 UTC", "maxReplies": 3},
}


def test_instructions_may_be_one_text_of_lines() -> None:
    charter = parse_charter({"name": "Ada", "instructions": "- Be brief.\n\n2. Cite sources.\n"})
    assert charter.instructions == ["Be brief.", "Cite sources."]
    assert parse_charter({"name": "Ada", "instructions": "Be kind."}).instructions == ["Be kind."]


def test_neoliths_shape_is_accepted_and_stored_loadably() -> None:
    charter = parse_charter(NEOLITH)
    assert isinstance(charter.personality, Personality)
    assert charter.personality.communication_style == "Short answers first."
    assert charter.communication_preferences == {"tone": "direct", "useBulletPoints": True}
    stored = charter.to_config()
    assert stored["personality"]["decision_making_style"] == "Weighs the risk."
    assert stored["operational_settings"] == {"workingHours": "09:00-18:00 UTC", "maxReplies": 3}
    assert parse_charter(stored) == charter
    assert parse_charter(json.loads(json.dumps(stored))) == charter


def test_our_stored_shape_gains_no_new_keys() -> None:
    assert set(parse_charter({"name": "Ada"}).to_config()) == set(FULL)


def test_an_unknown_field_is_refused_by_name_with_a_suggestion() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_charter({"name": "Ada", "missoin": "typo"})
    assert caught.value.message == (
        "invalid charter: missoin: unknown field (did you mean 'mission'?)"
    )
    with pytest.raises(ValidationFailed, match=r"personality\.communicationStyel: unknown field"):
        parse_charter({"name": "Ada", "personality": {"communicationStyel": "x"}})


def test_list_items_of_neoliths_lists_are_bounded() -> None:
    with pytest.raises(ValidationFailed, match=r"values\.1: must be 1 to 1000"):
        parse_charter({"name": "Ada", "values": ["ok", " "]})
    with pytest.raises(ValidationFailed, match=r"personality\.traits\.0: must be 1 to 1000"):
        parse_charter({"name": "Ada", "personality": {"traits": [""]}})


def test_the_example_charter_file_is_valid() -> None:
    charter = parse_charter(json.loads(EXAMPLE.read_text()))
    assert charter.name == "Grace" and charter.vision and charter.expertise
    assert parse_charter(charter.to_config()) == charter
