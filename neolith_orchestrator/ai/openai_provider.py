"""The OpenAI-compatible adapter: streams a reply from the Chat Completions API with
`openai.AsyncOpenAI`, so any server that speaks it answers (OpenAI, DeepSeek, vLLM, Ollama:
OPENAI_BASE_URL points at it). The same rules as the Anthropic adapter: the prompt from
`ai.prompt` (the charter is the system message, channel text only user and assistant turns),
the fault policy of `ai.retry.with_retries` (the SDK's own retries are off), the fair-use
slots of `ai.limits`.

A stream counts as complete once a choice reports its `finish_reason`; one that ends before
that was cut and is retried. Usage comes from the final chunk that `stream_options`
asks for; a server that sends none leaves the reply's usage empty (counted as zero).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.completion_usage import CompletionUsage

from neolith_orchestrator.ai.generator import ReplyRequest, ReplyResult, ReplySink
from neolith_orchestrator.ai.limits import ModelLimits
from neolith_orchestrator.ai.prompt import Prompt, build_prompt, request_charter
from neolith_orchestrator.ai.retry import Progress, RetryPolicy, StreamInterrupted, with_retries
from neolith_orchestrator.config import Settings
from neolith_orchestrator.errors import ModelError

_log = logging.getLogger("neolith_orchestrator.ai")

_BACKSTOP = 5.0  # seconds


@dataclass(frozen=True, slots=True)
class _Params:
    model: str
    max_tokens: int
    temperature: float | None


class OpenAIGenerator:
    """Writes replies through an OpenAI-compatible server. `aclose()` closes its client."""

    name = "openai"

    def __init__(self, settings: Settings, *, limits: ModelLimits | None = None) -> None:
        if not settings.openai_api_key:
            raise ValueError("OpenAIGenerator needs OPENAI_API_KEY")
        self._settings = settings
        self.limits = limits or ModelLimits.from_settings(settings)
        self.model = settings.openai_model
        self._idle = settings.openai_stream_idle_timeout / 1000
        extra: dict[str, Any] = {}
        if settings.openai_base_url:
            extra["base_url"] = settings.openai_base_url
        self._client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key,
            max_retries=0,
            # As in the Anthropic adapter, our idle timer speaks first; this is a backstop.
            timeout=openai.Timeout(
                self._idle + _BACKSTOP, connect=settings.openai_connect_timeout / 1000
            ),
            **extra,
        )
        self._policy = RetryPolicy(
            attempts=settings.openai_max_retries + 1,
            backoff_initial=settings.openai_retry_backoff_initial / 1000,
            backoff_max=settings.openai_retry_backoff_max / 1000,
            cap_setting="OPENAI_RETRY_BACKOFF_MAX",
        )

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
            max_tokens=overrides.max_tokens or self._settings.openai_max_tokens,
            temperature=overrides.temperature,
        )
        async with self.limits.org_slot(request.organization_id):
            return await with_retries(
                lambda progress: self._attempt(prompt, params, sink, progress),
                policy=self._policy,
                sink=sink,
                limits=self.limits,
                who=request.orchestrator_id,
            )

    async def aclose(self) -> None:
        await self._client.close()

    def describe(self) -> dict[str, Any]:
        """The provider's part of the runtime status (no secrets)."""
        return {
            "provider": self.name,
            "model": self.model,
            "offline": False,
            "base_url": self._settings.openai_base_url or "default",
            "limits": self.limits.snapshot().as_dict(),
        }

    async def _attempt(
        self, prompt: Prompt, params: _Params, sink: ReplySink, progress: Progress
    ) -> ReplyResult:
        parts: list[str] = []
        finish: str | None = None
        model = params.model
        usage: CompletionUsage | None = None
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(self._idle):
                    stream = await self._open(prompt, params)
            except TimeoutError:
                raise StreamInterrupted(f"no response from the model in {self._idle:g}s") from None
            stack.push_async_callback(stream.close)
            while True:
                try:
                    async with asyncio.timeout(self._idle):
                        chunk: ChatCompletionChunk = await anext(stream)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise StreamInterrupted(
                        f"the reply stream was idle for {self._idle:g}s"
                    ) from None
                model = chunk.model or model
                usage = chunk.usage or usage
                for choice in chunk.choices[:1]:  # we ask for one choice
                    text = choice.delta.content
                    if text:
                        progress.streamed = True
                        parts.append(text)
                        await sink.delta(text)
                    finish = choice.finish_reason or finish
        if finish is None:
            raise StreamInterrupted("the reply stream ended before the reply was complete")
        text = "".join(parts)
        if not text.strip():
            raise ModelError(f"the model returned no text (finish reason: {finish})")
        return ReplyResult(
            text=text, model=model, stop_reason=finish, usage=_usage(usage), provider=self.name
        )

    async def _open(
        self, prompt: Prompt, params: _Params
    ) -> openai.AsyncStream[ChatCompletionChunk]:
        messages: list[ChatCompletionMessageParam] = [
            ChatCompletionSystemMessageParam(role="system", content=prompt.system)
        ]
        for turn in prompt.turns:
            if turn.role == "assistant":
                messages.append(
                    ChatCompletionAssistantMessageParam(role="assistant", content=turn.content)
                )
            else:
                messages.append(ChatCompletionUserMessageParam(role="user", content=turn.content))
        return await self._client.chat.completions.create(
            model=params.model,
            messages=messages,
            max_completion_tokens=params.max_tokens,
            stream=True,
            stream_options={"include_usage": True},
            temperature=openai.omit if params.temperature is None else params.temperature,
        )


def _usage(usage: CompletionUsage | None) -> dict[str, int]:
    """The provider's counts in our names. `prompt_tokens` already includes cached ones."""
    if usage is None:
        return {}
    counted = {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}
    details = usage.prompt_tokens_details
    if details is not None and isinstance(details.cached_tokens, int):
        counted["cached_input_tokens"] = details.cached_tokens
    return counted
