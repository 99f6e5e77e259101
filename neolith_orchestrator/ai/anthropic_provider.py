"""The Anthropic adapter: streams a reply from the Messages API with `anthropic.AsyncAnthropic`,
under our retry policy (`ai.retry.with_retries`; the SDK's own retries are off) and the
fair-use limits (`ai.limits`: the organization's slot for the whole reply, a global slot per
attempt, so a request waiting out a back-off does not hold a global slot another tenant could
use).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import anthropic
from anthropic.lib.streaming import AsyncMessageStreamManager
from anthropic.types import AssistantMessageParam, MessageParam, UserMessageParam

from neolith_orchestrator.ai.generator import ReplyRequest, ReplyResult, ReplySink
from neolith_orchestrator.ai.limits import ModelLimits
from neolith_orchestrator.ai.prompt import Prompt, Turn, build_prompt, request_charter
from neolith_orchestrator.ai.retry import Progress, RetryPolicy, StreamInterrupted, with_retries
from neolith_orchestrator.config import Settings
from neolith_orchestrator.errors import ModelError

_log = logging.getLogger("neolith_orchestrator.ai")

_BACKSTOP = 5.0  # seconds


@dataclass(frozen=True, slots=True)
class _Params:
    model: str
    max_tokens: int


class AnthropicGenerator:
    """Writes replies with Claude. One per process; `aclose()` closes its HTTP client."""

    name = "anthropic"

    def __init__(self, settings: Settings, *, limits: ModelLimits | None = None) -> None:
        if not settings.anthropic_api_key:
            raise ValueError("AnthropicGenerator needs ANTHROPIC_API_KEY")
        self._settings = settings
        self.limits = limits or ModelLimits.from_settings(settings)
        self.model = settings.anthropic_model
        self._idle = settings.anthropic_stream_idle_timeout / 1000
        self._client = anthropic.AsyncAnthropic(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            max_retries=0,
            # Our idle timer (per event, in `_attempt`) speaks first; the transport's read
            # timeout is only a backstop, so the reason a stream failed is always the same.
            timeout=anthropic.Timeout(
                self._idle + _BACKSTOP, connect=settings.anthropic_connect_timeout / 1000
            ),
        )
        self._policy = RetryPolicy(
            attempts=settings.anthropic_max_retries + 1,
            backoff_initial=settings.anthropic_retry_backoff_initial / 1000,
            backoff_max=settings.anthropic_retry_backoff_max / 1000,
            cap_setting="ANTHROPIC_RETRY_BACKOFF_MAX",
        )
        self._warnings_logged: set[str] = set()

    async def generate(self, request: ReplyRequest, sink: ReplySink) -> ReplyResult:
        """Stream one reply into `sink`; `ModelError` when it cannot be written."""
        charter = request_charter(request)
        prompt = build_prompt(
            request,
            charter,
            max_messages=self._settings.ai_context_messages,
            max_chars=self._settings.ai_context_chars,
        )
        overrides = charter.model_settings
        params = _Params(
            model=overrides.model or self.model,
            max_tokens=overrides.max_tokens or self._settings.anthropic_max_tokens,
        )
        if overrides.temperature is not None:
            self._log_once(
                f"orchestrator {request.orchestrator_handle}: the charter's temperature is "
                "ignored (the Messages API no longer accepts sampling parameters)"
            )
        async with self.limits.org_slot(request.organization_id):
            return await self._with_retries(request, prompt, params, sink)

    async def aclose(self) -> None:
        await self._client.close()

    def describe(self) -> dict[str, Any]:
        """The provider's part of the runtime status (no secrets)."""
        return {
            "provider": self.name,
            "model": self.model,
            "offline": False,
            "base_url": self._settings.anthropic_base_url or "default",
            "limits": self.limits.snapshot().as_dict(),
        }

    async def _with_retries(
        self, request: ReplyRequest, prompt: Prompt, params: _Params, sink: ReplySink
    ) -> ReplyResult:
        return await with_retries(
            lambda progress: self._attempt(prompt, params, sink, progress),
            policy=self._policy,
            sink=sink,
            limits=self.limits,
            who=request.orchestrator_id,
        )

    async def _attempt(
        self, prompt: Prompt, params: _Params, sink: ReplySink, progress: Progress
    ) -> ReplyResult:
        manager = self._open(prompt, params)
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(self._idle):
                    stream = await stack.enter_async_context(manager)
            except TimeoutError:
                raise StreamInterrupted(f"no response from the model in {self._idle:g}s") from None
            complete = False
            while True:
                try:
                    async with asyncio.timeout(self._idle):
                        event = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise StreamInterrupted(
                        f"the reply stream was idle for {self._idle:g}s"
                    ) from None
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    progress.streamed = True
                    await sink.delta(event.delta.text)
                elif event.type == "message_stop":
                    complete = True
            if not complete:
                raise StreamInterrupted("the reply stream ended before the reply was complete")
            message = await stream.get_final_message()
        text = "".join(block.text for block in message.content if block.type == "text")
        if not text.strip():
            raise ModelError(f"the model returned no text (stop reason: {message.stop_reason})")
        usage = {"input_tokens": message.usage.input_tokens}
        usage["output_tokens"] = message.usage.output_tokens
        for extra in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            value = getattr(message.usage, extra, None)
            if isinstance(value, int):
                usage[extra] = value
        return ReplyResult(
            text=text,
            model=message.model,
            stop_reason=message.stop_reason,
            usage=usage,
            provider=self.name,
        )

    def _open(self, prompt: Prompt, params: _Params) -> AsyncMessageStreamManager[None]:
        turns = [_message_param(turn) for turn in prompt.turns]
        # The SDK warns (DeprecationWarning) about retiring models on every call; an operator
        # needs to read that once in the log, not as a warning filter's business. No await
        # happens inside, so no other task runs under this filter.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            manager = self._client.messages.stream(
                model=params.model,
                max_tokens=params.max_tokens,
                system=prompt.system,
                messages=turns,
            )
        for warning in caught:
            self._log_once(f"model provider: {warning.message}")
        return manager

    def _log_once(self, text: str) -> None:
        if text not in self._warnings_logged:
            self._warnings_logged.add(text)
            _log.warning("%s", text)


def _message_param(turn: Turn) -> MessageParam:
    if turn.role == "assistant":
        return AssistantMessageParam(role="assistant", content=turn.content)
    return UserMessageParam(role="user", content=turn.content)
