"""The offline responder: with no ANTHROPIC_API_KEY the product still runs and answers, from
the charter alone, without a model. Its replies are deterministic and every one of them
starts with `OFFLINE_LABEL`, so nobody mistakes them for the model's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from neolith_orchestrator.ai.charter import Charter, parse_charter
from neolith_orchestrator.ai.generator import ReplyRequest, ReplyResult, ReplySink
from neolith_orchestrator.errors import ValidationFailed

OFFLINE_LABEL = "[offline responder — no ANTHROPIC_API_KEY set]"
OFFLINE_MODEL = "offline"

_EXCERPT_MAX = 200
_CHUNKS = 4


class OfflineResponder:
    """A `ReplyGenerator` that needs no model; `ReplyResult.offline` is True."""

    name = "offline"
    model = OFFLINE_MODEL

    async def generate(self, request: ReplyRequest, sink: ReplySink) -> ReplyResult:
        """Stream the offline reply into `sink` in a few deltas and return it."""
        text = compose_offline_reply(request)
        for piece in _pieces(text, _CHUNKS):
            await sink.delta(piece)
            await asyncio.sleep(0)  # a stream, even offline: let listeners see the deltas
        return ReplyResult(
            text=text,
            model=OFFLINE_MODEL,
            stop_reason="end_turn",
            usage={"input_tokens": 0, "output_tokens": 0},
            offline=True,
            provider=self.name,
        )

    async def aclose(self) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        """The provider's part of the runtime status."""
        return {"provider": self.name, "model": OFFLINE_MODEL, "offline": True, "limits": None}


def compose_offline_reply(request: ReplyRequest) -> str:
    """The offline reply to `request`: labelled, from the charter, the same every time."""
    charter = _charter(request)
    title = ", ".join(part for part in (charter.role, charter.discipline) if part)
    lines = [
        OFFLINE_LABEL,
        f"Hi {_one_line(request.mention.author_name) or 'there'}, this is {charter.name}"
        f"{f' ({title})' if title else ''}.",
        f"I got your message: “{_excerpt(request.mention.content)}”",
        "I cannot write a real answer: this server has no language model configured. "
        "An administrator can set ANTHROPIC_API_KEY to bring me online.",
    ]
    if charter.mission:
        lines.append(f"What I am here for: {charter.mission}")
    if charter.capabilities:
        lines.append("Once online I can help with: " + "; ".join(charter.capabilities[:5]) + ".")
    return "\n".join(lines)


def _charter(request: ReplyRequest) -> Charter:
    try:
        return parse_charter(request.charter)
    except ValidationFailed:
        # Offline, an unreadable charter still deserves an answer; the name is enough.
        return Charter(name=_one_line(request.orchestrator_name)[:100] or "orchestrator")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _excerpt(text: str) -> str:
    flat = _one_line(text)
    return flat if len(flat) <= _EXCERPT_MAX else flat[: _EXCERPT_MAX - 1].rstrip() + "…"


def _pieces(text: str, parts: int) -> list[str]:
    """`text` cut at word boundaries into about `parts` pieces that join back to `text`."""
    size = max(1, len(text) // parts)
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        space = text.find(" ", end)
        end = len(text) if space == -1 or len(text) - space < size // 2 else space + 1
        pieces.append(text[start:end])
        start = end
    return pieces
