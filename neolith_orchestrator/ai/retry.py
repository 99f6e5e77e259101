"""The retry policy for model requests: what a failure means and how long to wait before
the next attempt. The SDK's own retries are off so that this is the only policy.

- transient: 408, 409, 429, 5xx and 529, an error event mid-stream of those kinds, a
  connection that failed, timed out, broke mid-stream or went idle. Retried after the
  server's `retry-after` when it gives one, else after an exponential back-off with jitter.
- permanent: 401, 402, 403, billing errors and spent budgets (even when sent as a 429).
  Retrying cannot help; raised at once as `ModelPermanentError`.
- fatal: any other rejection (400 invalid request, 404 unknown model, 413 too large).
  This request cannot succeed; raised at once as `ModelError`.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import anthropic
import httpx2

_PERMANENT_STATUS = frozenset({401, 402, 403})
_PERMANENT_TYPES = frozenset({"authentication_error", "permission_error", "billing_error"})
_PERMANENT_CODES = frozenset(
    {
        "contract_spend_limit_reached",
        "enforced_spend_limit_reached",
        "linked_organization_spend_limit_reached",
        "linked_organization_billing_unavailable",
        "organization_on_hold",
    }
)
_TRANSIENT_STATUS = frozenset({408, 409, 429})
_TRANSIENT_TYPES = frozenset({"rate_limit_error", "overloaded_error", "api_error", "timeout_error"})


class StreamInterrupted(Exception):
    """The reply stream went idle or ended before the message was complete."""


@dataclass(frozen=True, slots=True)
class Failure:
    """What a failed attempt means for the next one."""

    kind: Literal["transient", "permanent", "fatal"]
    reason: str
    retry_after: float | None = None


def classify(exc: BaseException) -> Failure | None:
    """The meaning of `exc`, or None when it is not a model failure (a bug: let it raise)."""
    if isinstance(exc, anthropic.APIStatusError):
        return _classify_status(exc)
    if isinstance(exc, anthropic.APITimeoutError):
        return Failure("transient", "the model provider did not answer in time")
    if isinstance(exc, anthropic.APIConnectionError):
        return Failure("transient", "could not connect to the model provider")
    if isinstance(exc, httpx2.TransportError):
        return Failure("transient", f"the stream broke ({type(exc).__name__}: {exc})")
    if isinstance(exc, StreamInterrupted):
        return Failure("transient", str(exc))
    if isinstance(exc, anthropic.APIResponseValidationError):
        return Failure("fatal", "the model provider sent a response we cannot read")
    return None


def _classify_status(exc: anthropic.APIStatusError) -> Failure:
    status, kind, code = exc.status_code, exc.type, exc.error_code
    # A 2xx status here means the error arrived as an event inside a started stream.
    what = f"HTTP {status}" if status >= 400 else "error event in the stream"
    detail = ", ".join(str(part) for part in (kind, code, exc.api_message) if part)
    described = f"{what}{f' ({detail})' if detail else ''}"
    if status in _PERMANENT_STATUS or kind in _PERMANENT_TYPES or code in _PERMANENT_CODES:
        return Failure("permanent", f"the model provider refused our key or budget: {described}")
    if status in _TRANSIENT_STATUS or status >= 500 or kind in _TRANSIENT_TYPES:
        retry_after = parse_retry_after(exc.response.headers) if status >= 400 else None
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
