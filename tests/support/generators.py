"""Deterministic reply generators for daemon tests: the outer boundary (the model) replaced
by a scripted one. The real Anthropic adapter is tested against a loopback model server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from neolith_orchestrator.ai.generator import ReplyRequest, ReplyResult, ReplySink

Behaviour = Callable[[ReplyRequest], "str | BaseException | None"]


@dataclass
class ScriptedGenerator:
    """Replies "<handle> re: <mention>" in three deltas. Per-call behaviour can be queued:
    an exception to raise mid-stream, or a gate to wait on (to hold a reply in flight).
    `fail_when` raises its exception for every mention containing its key (a poison job)."""

    name: str = "scripted"
    calls: list[ReplyRequest] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    fail_always: BaseException | None = None
    fail_when: dict[str, BaseException] = field(default_factory=dict)
    gate: asyncio.Event | None = None
    in_flight: int = 0
    max_in_flight: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def generate(self, request: ReplyRequest, sink: ReplySink) -> ReplyResult:
        self.calls.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.started.set()
        try:
            text = f"{request.orchestrator_handle} re: {request.mention.content}"
            third = max(1, len(text) // 3)
            await sink.delta(text[:third])
            if self.gate is not None:
                await self.gate.wait()
            if self.failures:
                raise self.failures.pop(0)
            if self.fail_always is not None:
                raise self.fail_always
            for key, exc in self.fail_when.items():
                if key in request.mention.content:
                    raise exc
            await sink.delta(text[third : 2 * third])
            await sink.delta(text[2 * third :])
            return ReplyResult(
                text=text,
                model="scripted-1",
                stop_reason="end_turn",
                usage={"input_tokens": 10, "output_tokens": 5},
                provider=self.name,
            )
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        return None
