"""A small Anthropic-compatible Messages API server that tests run on a loopback port.

It serves `POST /v1/messages` as JSON or as a server-sent event stream in the real event
format, records every request it receives, and answers from a script of behaviours::

    async with ModelServer() as server:
        server.script(status(429, retry_after=0.2), ok("Hello", chunks=3))
        ...  # point the real SDK at server.url

When the script is empty it answers with `server.default` (a plain `ok()`).
`RecordingSink` and `reply_request` are the other two ends of a generator under test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from neolith_orchestrator.ai.generator import ContextMessage, ReplyRequest

INPUT_TOKENS = 11  # what every reply reports as its input usage

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


@dataclass(frozen=True, slots=True)
class Ok:
    """A complete reply, streamed in `chunks` text deltas with `delay` seconds between events."""

    text: str = "Hello from the test model."
    chunks: int = 3
    delay: float = 0.0
    stop_reason: str = "end_turn"


@dataclass(frozen=True, slots=True)
class Status:
    """An error response with this HTTP status (and `retry-after` seconds when given)."""

    code: int
    retry_after: float | None = None
    error_type: str | None = None
    error_code: str | None = None
    message: str = "scripted failure"


@dataclass(frozen=True, slots=True)
class Cut:
    """A stream that starts `text` and drops the connection after `after` deltas."""

    text: str = "This reply is cut short."
    chunks: int = 3
    after: int = 1


@dataclass(frozen=True, slots=True)
class StreamError:
    """A stream that sends an SSE `error` event (e.g. overloaded) after `after` deltas."""

    error_type: str = "overloaded_error"
    text: str = "This reply meets an error event."
    chunks: int = 3
    after: int = 1


Behaviour = Ok | Status | Cut | StreamError


def ok(text: str = "Hello from the test model.", *, chunks: int = 3, delay: float = 0.0) -> Ok:
    return Ok(text=text, chunks=chunks, delay=delay)


def slow(text: str = "A slow reply.", *, delay: float, chunks: int = 3) -> Ok:
    return Ok(text=text, chunks=chunks, delay=delay)


def status(
    code: int,
    *,
    retry_after: float | None = None,
    error_type: str | None = None,
    error_code: str | None = None,
) -> Status:
    return Status(code=code, retry_after=retry_after, error_type=error_type, error_code=error_code)


def cut(text: str = "This reply is cut short.", *, after: int = 1, chunks: int = 3) -> Cut:
    return Cut(text=text, chunks=chunks, after=after)


def stream_error(error_type: str = "overloaded_error", *, after: int = 1) -> StreamError:
    return StreamError(error_type=error_type, after=after)


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """What one request carried: the JSON body and the headers (lower-case names)."""

    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class ModelServer:
    """The server; `requests` lists what it received, `max_in_flight` the peak concurrency."""

    host: str = "127.0.0.1"
    default: Behaviour = field(default_factory=Ok)
    requests: list[ReceivedRequest] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _script: deque[Behaviour] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours, one per request, in order."""
        self._script.extend(behaviours)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        # aiohttp lets a handler run on after its client left (a slow stream the test
        # abandoned); end those now rather than wait out the runner's shutdown timeout.
        for task in list(self._handlers):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ModelServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            ReceivedRequest(body=body, headers={k.lower(): v for k, v in request.headers.items()})
        )
        behaviour = self._script.popleft() if self._script else self.default
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if isinstance(behaviour, Status):
                return self._error(behaviour)
            if not body.get("stream"):
                if not isinstance(behaviour, Ok):
                    return self._error(Status(500, message="cannot cut a JSON response"))
                return web.json_response(self._message(body, behaviour.text, behaviour.stop_reason))
            return await self._stream(request, body, behaviour)
        finally:
            self.in_flight -= 1
            self._handlers.discard(handler)

    def _error(self, behaviour: Status) -> web.Response:
        error: dict[str, Any] = {
            "type": behaviour.error_type or _ERROR_TYPES.get(behaviour.code, "api_error"),
            "message": behaviour.message,
        }
        if behaviour.error_code:
            error["details"] = {"error_code": behaviour.error_code}
        headers = {"request-id": f"req_test_{next(self._ids)}"}
        if behaviour.retry_after is not None:
            headers["retry-after"] = str(behaviour.retry_after)
        return web.json_response(
            {"type": "error", "error": error}, status=behaviour.code, headers=headers
        )

    def _message(self, body: dict[str, Any], text: str, stop_reason: str | None) -> dict[str, Any]:
        return {
            "id": f"msg_test_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "unknown"),
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": len(text.split()) or 1},
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], behaviour: Ok | Cut | StreamError
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        response.headers["request-id"] = f"req_test_{next(self._ids)}"
        await response.prepare(request)
        delay = behaviour.delay if isinstance(behaviour, Ok) else 0.0
        stop_after = None if isinstance(behaviour, Ok) else behaviour.after
        deltas = 0
        try:
            for event in self._events(body, behaviour):
                if event["type"] == "content_block_delta":
                    if deltas == stop_after:
                        return await self._break_off(request, response, behaviour)
                    deltas += 1
                if delay:
                    await asyncio.sleep(delay)
                await response.write(_sse(event))
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away (an idle timeout, a cancelled test): nobody to answer
        return response

    def _events(
        self, body: dict[str, Any], behaviour: Ok | Cut | StreamError
    ) -> list[dict[str, Any]]:
        chunks = _split(behaviour.text, behaviour.chunks)
        stop_reason = behaviour.stop_reason if isinstance(behaviour, Ok) else "end_turn"
        text_delta = [{"type": "text_delta", "text": chunk} for chunk in chunks]
        return [
            {"type": "message_start", "message": self._message(body, "", None)},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {"type": "ping"},
            *({"type": "content_block_delta", "index": 0, "delta": delta} for delta in text_delta),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": len(chunks)},
            },
            {"type": "message_stop"},
        ]

    async def _break_off(
        self, request: web.Request, response: web.StreamResponse, behaviour: Ok | Cut | StreamError
    ) -> web.StreamResponse:
        if isinstance(behaviour, StreamError):
            error = {"type": behaviour.error_type, "message": "scripted stream error"}
            await response.write(_sse({"type": "error", "error": error}))
            await response.write_eof()
            return response
        # Drop the connection without the final chunk: the client sees an incomplete body.
        assert request.transport is not None
        request.transport.abort()
        return response


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def _split(text: str, parts: int) -> list[str]:
    """`text` in `parts` nearly equal, non-empty pieces (fewer if the text is short)."""
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        pieces.append(text[start:end])
        start = end
    return [p for p in pieces if p]


class RecordingSink:
    """A `ReplySink` that records what it was given: ("delta", text) and ("reset", "")."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def delta(self, text: str) -> None:
        self.events.append(("delta", text))

    async def reset(self) -> None:
        self.events.append(("reset", ""))

    @property
    def resets(self) -> int:
        return sum(1 for kind, _ in self.events if kind == "reset")

    @property
    def text(self) -> str:
        """What a reader sees now: the deltas since the last reset."""
        shown: list[str] = []
        for kind, text in self.events:
            shown = [] if kind == "reset" else [*shown, text]
        return "".join(shown)


def reply_request(
    mention: str = "@ada what is our deploy status?",
    *,
    history: tuple[tuple[str, str], ...] = (),
    charter: dict[str, Any] | None = None,
    organization_id: uuid.UUID | None = None,
    author: str = "Alice",
) -> ReplyRequest:
    """A `ReplyRequest` for orchestrator Ada; `history` holds (author, text), oldest first,
    where the author "Ada" marks the orchestrator's own messages."""
    start = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def message(index: int, name: str, text: str) -> ContextMessage:
        return ContextMessage(
            id=uuid.uuid4(),
            author_id=uuid.uuid4(),
            author_name=name,
            content=text,
            created_at=start + timedelta(minutes=index),
            from_self=name == "Ada",
        )

    return ReplyRequest(
        organization_id=organization_id or uuid.uuid4(),
        orchestrator_id=uuid.uuid4(),
        orchestrator_name="Ada",
        orchestrator_handle="ada",
        charter=charter if charter is not None else {"name": "Ada", "role": "Release manager"},
        channel_name="general",
        mention=message(len(history), author, mention),
        history=tuple(message(i, name, text) for i, (name, text) in enumerate(history)),
    )
