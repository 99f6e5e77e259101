"""The retry policy for model requests, shared by every provider adapter: what a failure
means, how long to wait before the next attempt, and the attempt loop itself
(`with_retries`). The SDKs' own retries are off so that this is the only policy.

- transient: 408, 409, 429, 5xx and 529, an error event mid-stream of those kinds, a
  connection that failed, timed out, broke mid-stream or went idle. Retried after the
  server's `retry-after` when it gives one, else after an exponential back-off with jitter.
- permanent: 401, 402, 403, billing errors and spent budgets (even when sent as a 429, like
  OpenAI's `insufficient_quota`).
  Retrying cannot help; raised at once as `ModelPermanentError`.
- fatal: any other rejection (400 invalid request, 404 unknown model, 413 too large).
  This request cannot succeed; raised at once as `ModelError`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

import anthropic
import httpx2
import openai

from neolith_orchestrator.ai.generator import ReplySink
from neolith_orchestrator.ai.limits import ModelLimits
from neolith_orchestrator.errors import ModelError, ModelPermanentError

_log = logging.getLogger("neolith_orchestrator.ai")
_T = TypeVar("_T")

_PERMANENT_STATUS = frozenset({401, 402, 403})
_PERMANENT_TYPES = frozenset(
    {"authentication_error", "permission_error", "billing_error", "insufficient_quota"}
)
_PERMANENT_CODES = frozenset(
    {
        "contract_spend_limit_reached",
        "enforced_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
        "organization_on_hold",
        "insufficient_quota",
        "invalid_api_key",
    }
)
_TRANSIENT_STATUS = frozenset({408, 409, 429})
_TRANSIENT_TYPES = frozenset(
    {"rate_limit_error", "overloaded_error", "api_error", "timeout_error", "server_error"}
)
_APIStatusError = (anthropic.APIStatusError, openai.APIStatusError)


class StreamInterrupted(Exception):
    """The reply stream went idle or ended before the message was complete."""


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed attempt means for the next one."""

    kind: Literal["transient", "permanent", "fatal"]
    reason: str
    retry_after: float | None = None


def classify(exc: BaseException) -> Failure | None:
    """The meaning of `exc`, or None when it is not a model failure (a bug: let it raise).
    Both SDKs are understood: their error trees have the same shape."""
    if isinstance(exc, _APIStatusError):
        return _classify_status(exc)
    if isinstance(exc, anthropic.APITimeoutError | openai.APITimeoutError):
        return Failure("transient", "the model provider did not answer in time")
    if isinstance(exc, anthropic.APIConnectionError | openai.APIConnectionError):
        return Failure("transient", "could not connect to the model provider")
    if isinstance(exc, httpx2.TransportError):
        return Failure("transient", f"the stream broke ({type(exc).__name__}: {exc})")
    if isinstance(exc, StreamInterrupted):
        return Failure("transient", str(exc))
    if isinstance(exc, anthropic.APIResponseValidationError | openai.APIResponseValidationError):
        return Failure("fatal", "the model provider sent a response we cannot read")
    if isinstance(exc, openai.APIError):
        # The OpenAI SDK raises a bare APIError for an error object inside a started stream;
        # an untyped one is the server failing mid-reply, worth another attempt.
        if exc.type is None and exc.code is None:
            reason = f"the model provider is unavailable: error event in the stream ({exc})"
            return Failure("transient", reason)
        return _classify(200, exc.type, exc.code, exc.message, None)
    return None


def _classify_status(exc: anthropic.APIStatusError | openai.APIStatusError) -> Failure:
    kind: str | None = exc.type
    if isinstance(exc, anthropic.APIStatusError):
        code, message = exc.error_code, exc.api_message
    else:
        code, message = exc.code, _openai_message(exc)
    headers = exc.response.headers if exc.status_code >= 400 else None
    return _classify(exc.status_code, kind, code, message, headers)


def _openai_message(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str):
            return message
    return None


def _classify(
    status: int,
    kind: str | None,
    code: str | None,
    message: str | None,
    headers: Mapping[str, str] | None,
) -> Failure:
    # A 2xx status here means the error arrived as an event inside a started stream.
    what = f"HTTP {status}" if status >= 400 else "error event in the stream"
    detail = ", ".join(str(part) for part in (kind, code, message) if part)
    described = f"{what}{f' ({detail})' if detail else ''}"
    if status in _PERMANENT_STATUS or kind in _PERMANENT_TYPES or code in _PERMANENT_CODES:
        return Failure("permanent", f"the model provider refused our key or budget: {described}")
    if status in _TRANSIENT_STATUS or status >= 500 or kind in _TRANSIENT_TYPES:
        retry_after = parse_retry_after(headers) if headers is not None else None
        return Failure("transient", f"the model provider is unavailable: {described}", retry_after)
    return Failure("fatal", f"the model provider rejected the request: {described}")


def parse_retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return _non_negative(float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _non_negative(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _non_negative((when - (now or datetime.now(UTC))).total_seconds())


def _non_negative(seconds: float) -> float | None:
    return max(0.0, seconds) if math.isfinite(seconds) else None


def backoff_delay(
    retry: int, *, initial: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before retry number `retry` (0-based): doubling from `initial`, capped at `cap`,
    with "equal jitter" (between half and all of it) so clients that failed together spread out."""
    base = min(cap, initial * 2.0 ** min(retry, 32))
    return base / 2 + rand() * base / 2


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a reply gets and how long to wait between them (seconds)."""

    attempts: int
    backoff_initial: float
    backoff_max: float
    # The setting that caps a server's retry-after, named when a wait is refused.
    cap_setting: str

    def delay_or_raise(self, failure: Failure, attempt: int, exc: Exception) -> float:
        """Seconds to wait before the next attempt, or the error that ends the reply."""
        if failure.kind == "permanent":
            raise ModelPermanentError(failure.reason) from exc
        if failure.kind == "fatal":
            raise ModelError(failure.reason) from exc
        if attempt == self.attempts:
            raise ModelError(
                f"no reply after {self.attempts} attempt(s): {failure.reason}"
            ) from exc
        if failure.retry_after is None:
            return backoff_delay(attempt - 1, initial=self.backoff_initial, cap=self.backoff_max)
        if failure.retry_after > self.backoff_max:
            raise ModelError(
                f"{failure.reason}; it asks us to wait {failure.retry_after:g}s, more than "
                f"{self.cap_setting} allows"
            ) from exc
        return failure.retry_after


@dataclass(slots=True)
class Progress:
    """What one attempt has done so far: whether any text reached the sink."""

    streamed: bool = False


async def with_retries(
    attempt: Callable[[Progress], Awaitable[_T]],
    *,
    policy: RetryPolicy,
    sink: ReplySink,
    limits: ModelLimits,
    who: object,
) -> _T:
    """Run `attempt` under `policy`, each try holding a global slot of `limits`. A try that
    streamed text and failed resets the sink, so the next one starts over and a reader never
    sees half a reply twice. `who` names the orchestrator in the log."""
    for number in range(1, policy.attempts + 1):
        progress = Progress()
        try:
            async with limits.global_slot():
                return await attempt(progress)
        except Exception as exc:
            failure = classify(exc)
            if progress.streamed and (failure is not None or isinstance(exc, ModelError)):
                await sink.reset()
            if failure is None:
                raise
            delay = policy.delay_or_raise(failure, number, exc)
            _log.warning(
                "model attempt %d/%d for orchestrator %s failed: %s; retrying in %.2fs",
                number,
                policy.attempts,
                who,
                failure.reason,
                delay,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")
