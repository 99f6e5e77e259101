"""Decoding untrusted JSON without letting it reach places that would crash on it.

Three things decode fine in Python yet fail later, as a 500 or a database error: nesting
deep enough to exhaust the recursion limit (the decoder itself, or any code walking the
result), a lone UTF-16 surrogate (`"\\ud800"`: a `str` that cannot be encoded as UTF-8), and
NUL characters (PostgreSQL text refuses them; refused on SQLite too, so both backends agree).
Each is refused up front as `InvalidInput` (422) naming the field it was found in.
"""

from __future__ import annotations

import json
import re
from typing import Any

from neolith_orchestrator.errors import ValidationFailed

MAX_DEPTH = 64
_MAX_PROBLEMS = 10

# A JSON string literal (escapes included), to blank out before counting brackets.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# In valid JSON text NUL and lone surrogates can only arrive escaped: seeing neither escape
# means the decoded tree is clean, so the common case never walks it.
_SUSPICIOUS = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")


class InvalidInput(ValidationFailed):
    """The request is invalid.

    `details` lists each problem as `{"field", "message"}`; the message joins them."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        self.details = details
        super().__init__("; ".join(f"{d['field']}: {d['message']}" for d in details))


class TooDeep(dict[str, Any]):
    """Stands for a payload that was too deep to decode (see `realtime/packets.py`)."""


def field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput([{"field": field, "message": message}])


def too_deep(text: str) -> bool:
    """Whether the brackets of `text` nest deeper than MAX_DEPTH (C-speed string passes, so a
    megabyte of brackets costs milliseconds, not a Python loop per character)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(MAX_DEPTH):
        # Each pass removes the innermost level of every nest.
        brackets = brackets.replace("[]", "").replace("{}", "")
        if not brackets:
            return False
    balanced = brackets.count("[") == brackets.count("]")
    return balanced and brackets.count("{") == brackets.count("}")


def decode_json(body: bytes) -> Any:
    """`body` as JSON, refused (422) when malformed, nested too deep, or carrying a NUL or a
    lone surrogate in any string."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise field_error("payload", "the body is not UTF-8") from exc
    if too_deep(text):
        raise field_error("payload", f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise field_error("payload", "malformed JSON") from exc
    if _SUSPICIOUS.search(text):
        check_tree(data)
    return data


def _string_problem(value: str) -> str | None:
    if "\x00" in value:
        return "must not contain NUL characters"
    if _SURROGATE.search(value):
        return "contains a lone UTF-16 surrogate, which is not valid Unicode text"
    return None


def check_tree(data: Any) -> None:
    """Refuse a decoded payload nested deeper than MAX_DEPTH or holding a bad string; every
    problem names its field (`content`, `charter.values.2`). Iterative: safe at any depth."""
    if isinstance(data, TooDeep):
        raise field_error("payload", f"JSON nested deeper than {MAX_DEPTH} levels")
    problems: list[dict[str, str]] = []
    stack: list[tuple[tuple[str, ...], Any]] = [((), data)]
    while stack and len(problems) < _MAX_PROBLEMS:
        path, value = stack.pop()
        where = ".".join(path) or "payload"
        if isinstance(value, str):
            problem = _string_problem(value)
            if problem is not None:
                problems.append({"field": where, "message": problem})
            continue
        if not isinstance(value, dict | list):
            continue
        if len(path) >= MAX_DEPTH:
            # Named by the top-level field it hangs from: the full path is 64 steps long.
            top = path[0] if path else "payload"
            problems.append({"field": top, "message": f"nested deeper than {MAX_DEPTH} levels"})
            continue
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            name = str(key)
            problem = _string_problem(name) if isinstance(key, str) else None
            if problem is not None:
                # The key itself cannot be shown safely; name its place instead.
                problems.append({"field": where, "message": f"a key {problem}"})
                continue
            stack.append(((*path, name), item))
    if problems:
        problems.sort(key=lambda p: p["field"])
        raise InvalidInput(problems)
