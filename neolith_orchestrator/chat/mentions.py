"""Find the @handles a message mentions. Pure: no I/O.

A mention is `@handle` at a word boundary (not inside an e-mail address or a word),
matched case-insensitively. Text inside code spans or fenced blocks and quoted lines
(`> ...`) is ignored: quoting a mention is not asking again.
"""

from __future__ import annotations

import re

HANDLE_PATTERN = r"[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9_])?"
_HANDLE_RE = re.compile(HANDLE_PATTERN)
_MENTION_RE = re.compile(r"(?<![\w@.+-])@(" + HANDLE_PATTERN + r")(?![\w-]|\.[a-z0-9])", re.I)
_FENCE_RE = re.compile(r"```.*?(?:```|\Z)", re.S)
_CODE_SPAN_RE = re.compile(r"`[^`\n]*`")


def normalize_handle(handle: str) -> str:
    """The stored form of a handle: lower case, no leading @."""
    return handle.strip().removeprefix("@").lower()


def is_valid_handle(handle: str) -> bool:
    return _HANDLE_RE.fullmatch(handle) is not None


def strip_unmentionable(text: str) -> str:
    """Remove fenced blocks, code spans and quoted lines: mentions there do not count."""
    text = _FENCE_RE.sub(" ", text)
    text = _CODE_SPAN_RE.sub(" ", text)
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(">"))


def parse_mentions(text: str) -> list[str]:
    """The distinct handles mentioned in `text`, lower case, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in _MENTION_RE.finditer(strip_unmentionable(text)):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)
