"""The reply generator protocol: what a daemon needs from whatever writes its replies.

A generator streams text into a `ReplySink` and returns the whole reply once. It raises
`ModelError` when retries are exhausted and `ModelPermanentError` when retrying cannot help
(a rejected key, a spent budget). It never touches the database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class ContextMessage:
    """One channel message as the model sees it."""

    id: uuid.UUID
    author_id: uuid.UUID | None
    author_name: str
    content: str
    created_at: datetime
    # True when the orchestrator being asked wrote it (it becomes an assistant turn).
    from_self: bool = False


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    """Everything needed to write one reply; built by the daemon from the database."""

    organization_id: uuid.UUID
    orchestrator_id: uuid.UUID
    orchestrator_name: str
    orchestrator_handle: str
    charter: dict[str, Any]
    channel_name: str
    mention: ContextMessage
    # Earlier messages of the channel or thread, oldest first, without the mention.
    history: tuple[ContextMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyResult:
    text: str
    model: str
    stop_reason: str | None = None
    # input_tokens and output_tokens at least, when the provider reports them.
    usage: dict[str, int] = field(default_factory=dict)
    offline: bool = False
    # Who wrote it ("anthropic", "openai", "offline"); empty from a generator that predates it.
    provider: str = ""


class ReplySink(Protocol):
    """Where streamed text goes while a reply is being written."""

    async def delta(self, text: str) -> None: ...

    async def reset(self) -> None:
        """A retry starts over: discard what was streamed so far."""
        ...


class ReplyGenerator(Protocol):
    """Writes replies. `name` is shown in the runtime status (e.g. "anthropic", "openai",
    "offline", or "providers" for the router that picks one per charter)."""

    name: str

    async def generate(self, request: ReplyRequest, sink: ReplySink) -> ReplyResult: ...

    async def aclose(self) -> None: ...


class NullSink:
    """A sink that drops the stream (for callers that only want the final text)."""

    async def delta(self, text: str) -> None:
        return None

    async def reset(self) -> None:
        return None
