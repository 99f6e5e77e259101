"""Mention parsing: word boundaries, case, code and quotes."""

from __future__ import annotations

import pytest

from neolith_orchestrator.chat.mentions import is_valid_handle, normalize_handle, parse_mentions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hey @Ada and @bob, also @ada", ["ada", "bob"]),
        ("@ada.", ["ada"]),
        ("(@ada)", ["ada"]),
        ("@ada-bot: hi @x.y and @z_", ["ada-bot", "x.y", "z_"]),
        ("mail ada@example.com", []),
        ("@adam is not @ada", ["adam", "ada"]),
        ("inline `@ada` code", []),
        ("```\n@ada in a block\n```\n@bob after", ["bob"]),
        ("> @ada said something\nreply to @bob", ["bob"]),
        ("no mention here", []),
        ("@", []),
    ],
)
def test_parse_mentions(text: str, expected: list[str]) -> None:
    assert parse_mentions(text) == expected


def test_handles_are_normalised_and_checked() -> None:
    assert normalize_handle(" @Ada ") == "ada"
    assert is_valid_handle("ada-bot_2")
    assert not is_valid_handle("-ada")
    assert not is_valid_handle("a" * 65)
    assert not is_valid_handle("ada bot")
