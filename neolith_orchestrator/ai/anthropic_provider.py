"""The Anthropic adapter: streams a reply from the Messages API with `anthropic.AsyncAnthropic`,
under our retry policy (`ai.retry`; the SDK's own retries are off) and the fair-use limits
(`ai.limits`: the organization's slot for the whole reply, a global slot per attempt, so a
request waiting out a back-off does not hold a global slot another tenant could use).
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

from neolith_orchestrator.ai.charter import Charter, parse_charter
from neolith_orchestrator.ai.generator import ReplyRequest, ReplyResult, ReplySink
from neolith_orchestrator.ai.limits import ModelLimits
from neolith_orchestrator.ai.prompt import Prompt, Turn, build_prompt
from neolith_orchestrator.ai.retry import Failure, StreamInterrupted, backoff_delay, classify
from neolith_orchestrator.config import Settings
from neolith_orchestrator.errors import ModelError, ModelPermanentError, ValidationFailed

_log = logging.getLogger("neolith_orchestrator.ai")

_BACKSTOP = 5.0  # seconds


@dataclass(frozen=True, slots=True)
class _Params:
    model: str
    max_tokens: int


@dataclass(slots=True)
class _Progress:
    streamed: bool = False


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
        self._warnings_logged: set[str] = set()

    async def generate(self, request: ReplyRequest, sink: ReplySink) -> ReplyResult:
        """Stream one reply into `sink`; `ModelError` when it cannot be written."""
        charter = _charter(request)
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
        attempts = self._settings.anthropic_max_retries + 1
        for attempt in range(attempts):
            progress = _Progress()
            try:
                async with self.limits.global_slot():
                    return await self._attempt(prompt, params, sink, progress)
            except Exception as exc:
                failure = classify(exc)
                if progress.streamed and (failure is not None or isinstance(exc, ModelError)):
                    await sink.reset()  # the next attempt starts over; never show a half twice
                if failure is None:
                    raise
                delay = self._delay_or_raise(failure, attempt + 1, attempts, exc)
                _log.warning(
                    "model attempt %d/%d for orchestrator %s failed: %s; retrying in %.2fs",
                    attempt + 1,
                    attempts,
                    request.orchestrator_id,
                    failure.reason,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _delay_or_raise(
        self, failure: Failure, attempt: int, attempts: int, exc: Exception
    ) -> float:
        """Seconds to wait before the next attempt, or the error that ends the reply."""
        if failure.kind == "permanent":
            raise ModelPermanentError(failure.reason) from exc
        if failure.kind == "fatal":
            raise ModelError(failure.reason) from exc
        if attempt == attempts:
            raise ModelError(f"no reply after {attempts} attempt(s): {failure.reason}") from exc
        cap = self._settings.anthropic_retry_backoff_max / 1000
        if failure.retry_after is None:
            initial = self._settings.anthropic_retry_backoff_initial / 1000
            return backoff_delay(attempt - 1, initial=initial, cap=cap)
        if failure.retry_after > cap:
            raise ModelError(
                f"{failure.reason}; it asks us to wait {failure.retry_after:g}s, more than "
                "ANTHROPIC_RETRY_BACKOFF_MAX allows"
            ) from exc
        return failure.retry_after

    async def _attempt(
        self, prompt: Prompt, params: _Params, sink: ReplySink, progress: _Progress
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
            text=text, model=message.model, stop_reason=message.stop_reason, usage=usage
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


def _charter(request: ReplyRequest) -> Charter:
    try:
        return parse_charter(request.charter)
    except ValidationFailed as exc:
        raise ModelError(f"orchestrator {request.orchestrator_handle}: {exc.message}") from exc


def _message_param(turn: Turn) -> MessageParam:
    if turn.role == "assistant":
        return AssistantMessageParam(role="assistant", content=turn.content)
    return UserMessageParam(role="user", content=turn.content)
