"""The JSON error body: per-field `details` for validation errors (from the error's own list
or the services' "field: message" wording), and `Retry-After` from any error that carries
`retry_after`."""

from __future__ import annotations

import json

from starlette.requests import Request

from neolith_orchestrator.errors import OrchestratorError, TooManyRequests, ValidationFailed
from neolith_orchestrator.http.decoding import InvalidInput, check_tree, decode_json
from neolith_orchestrator.http.errors import EXCEPTION_HANDLERS, validation_details


class _Busy(OrchestratorError):
    """Try again shortly."""

    status_code = 503
    code = "unavailable"
    retry_after = 2.5


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/x", "headers": []})


async def test_retry_after_comes_from_any_error_that_has_it() -> None:
    handler = EXCEPTION_HANDLERS[OrchestratorError]
    busy = await handler(_request(), _Busy())
    assert busy.status_code == 503 and busy.headers["retry-after"] == "3"
    limited = await handler(_request(), TooManyRequests(retry_after=0.2))
    assert limited.headers["retry-after"] == "1"
    plain = await handler(_request(), OrchestratorError("boom"))
    assert "retry-after" not in plain.headers
    assert json.loads(plain.body) == {"error": {"code": "internal", "message": "boom"}}


def test_details_from_the_services_wording() -> None:
    exc = ValidationFailed("content: must not be empty; reply_to_id: no such message")
    assert validation_details(exc) == [
        {"field": "content", "message": "must not be empty"},
        {"field": "reply_to_id", "message": "no such message"},
    ]
    assert validation_details(ValidationFailed("invalid charter: x")) == [
        {"field": "payload", "message": "invalid charter: x"}
    ]
    own = InvalidInput([{"field": "a.b", "message": "bad"}])
    assert validation_details(own) == [{"field": "a.b", "message": "bad"}]


def test_depth_is_measured_outside_strings() -> None:
    assert decode_json(b'{"a": "' + b"[" * 5000 + b'"}') == {"a": "[" * 5000}
    assert decode_json(b"[" * 64 + b"]" * 64) is not None
    for body in (b"[" * 65 + b"]" * 65, b"[" * 100_000):
        try:
            decode_json(body)
        except InvalidInput as exc:
            assert exc.details[0]["field"] == "payload"
        else:
            raise AssertionError(body[:10])


def test_a_decoded_tree_names_the_field_it_is_too_deep_under() -> None:
    nested: object = "x"
    for _ in range(70):
        nested = [nested]
    try:
        check_tree({"content": "hi", "extra": nested})
    except InvalidInput as exc:
        assert exc.details == [{"field": "extra", "message": "nested deeper than 64 levels"}]
    else:
        raise AssertionError("not refused")
