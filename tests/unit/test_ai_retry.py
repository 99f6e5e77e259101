from __future__ import annotations

from datetime import UTC, datetime

import anthropic
import httpx2
import pytest

from neolith_orchestrator.ai.retry import (
    StreamInterrupted,
    backoff_delay,
    classify,
    parse_retry_after,
)

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": "Wed, 01 Jan 2025 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 01 Jan 2025 11:00:00 GMT"}, 0.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    lows = [backoff_delay(n, initial=0.5, cap=4.0, rand=lambda: 0.0) for n in range(6)]
    highs = [backoff_delay(n, initial=0.5, cap=4.0, rand=lambda: 1.0) for n in range(6)]
    assert lows == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert highs == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff_delay(10_000, initial=0.5, cap=4.0) <= 4.0


def _status_error(status: int, body: object, headers: dict[str, str] | None = None) -> Exception:
    request = httpx2.Request("POST", "http://model.test/v1/messages")
    response = httpx2.Response(status, headers=headers or {}, json=body, request=request)
    return anthropic.APIStatusError("failed", response=response, body=body)


def _body(kind: str, code: str | None = None) -> dict[str, object]:
    error: dict[str, object] = {"type": kind, "message": "m"}
    if code:
        error["details"] = {"error_code": code}
    return {"type": "error", "error": error}


@pytest.mark.parametrize(
    ("status", "kind", "code", "verdict"),
    [
        (401, "authentication_error", None, "permanent"),
        (402, "billing_error", None, "permanent"),
        (403, "permission_error", None, "permanent"),
        (429, "rate_limit_error", "enforced_spend_limit_reached", "permanent"),
        (429, "rate_limit_error", "contract_spend_limit_reached", "permanent"),
        (400, "invalid_request_error", "organization_on_hold", "permanent"),
        (400, "billing_error", None, "permanent"),
        (429, "rate_limit_error", None, "transient"),
        (429, "rate_limit_error", "ramp_limit_exceeded", "transient"),
        (408, "timeout_error", None, "transient"),
        (500, "api_error", None, "transient"),
        (503, "api_error", None, "transient"),
        (529, "overloaded_error", None, "transient"),
        (200, "overloaded_error", None, "transient"),
        (200, "authentication_error", None, "permanent"),
        (400, "invalid_request_error", None, "fatal"),
        (404, "not_found_error", None, "fatal"),
        (413, "invalid_request_error", None, "fatal"),
    ],
)
def test_status_errors(status: int, kind: str, code: str | None, verdict: str) -> None:
    failure = classify(_status_error(status, _body(kind, code)))
    assert failure is not None
    assert failure.kind == verdict
    assert kind in failure.reason


def test_retry_after_is_read_from_a_transient_status() -> None:
    failure = classify(_status_error(429, _body("rate_limit_error"), {"retry-after": "3"}))
    assert failure is not None
    assert failure.retry_after == 3.0


def test_transport_failures_are_transient() -> None:
    request = httpx2.Request("POST", "http://model.test/v1/messages")
    for exc in (
        anthropic.APIConnectionError(request=request),
        anthropic.APITimeoutError(request=request),
        httpx2.RemoteProtocolError("peer closed connection", request=request),
        httpx2.ReadTimeout("read timed out", request=request),
        StreamInterrupted("the reply stream was idle for 1s"),
    ):
        failure = classify(exc)
        assert failure is not None, exc
        assert failure.kind == "transient"


def test_other_exceptions_are_not_model_failures() -> None:
    assert classify(ValueError("a bug")) is None
    assert classify(KeyError("x")) is None
