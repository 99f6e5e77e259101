"""A small OpenAI-compatible Chat Completions server that tests run on a loopback port.

It serves `POST /v1/chat/completions` as JSON or as a server-sent event stream of
`chat.completion.chunk` objects (a role chunk, the text deltas, a chunk carrying the
`finish_reason`, a final usage chunk when `stream_options.include_usage` asks for it, then
`[DONE]`), records every request, and answers from the same script of behaviours as
`tests.support.model_server`::

    async with OpenAIServer() as server:
        server.script(status(429, retry_after=0.2), ok("Hello", chunks=3))
        ...  # point the real `openai` SDK at server.url (it ends in /v1)
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.model_server import (
    Behaviour,
    Cut,
    Ok,
    ReceivedRequest,
    Status,
    StreamError,
    _split,
)

PROMPT_TOKENS = 13  # what every reply reports as its input usage
CREATED = 1_764_000_000

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}
_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found"}


@dataclass
class OpenAIServer:
    """The server; `requests` lists what it received."""

    host: str = "127.0.0.1"
    default: Behaviour = field(default_factory=Ok)
    requests: list[ReceivedRequest] = field(default_factory=list)
    _script: deque[Behaviour] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """Queue behaviours, one per request, in order."""
        self._script.extend(behaviours)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for task in list(self._handlers):  # handlers of streams their client abandoned
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(
            ReceivedRequest(body=body, headers={k.lower(): v for k, v in request.headers.items()})
        )
        behaviour = self._script.popleft() if self._script else self.default
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            if isinstance(behaviour, Status):
                return self._error(behaviour)
            if not body.get("stream"):
                if not isinstance(behaviour, Ok):
                    return self._error(Status(500, message="cannot cut a JSON response"))
                return web.json_response(self._completion(body, behaviour))
            return await self._stream(request, body, behaviour)
        finally:
            self._handlers.discard(handler)

    def _error(self, behaviour: Status) -> web.Response:
        error = {
            "message": behaviour.message,
            "type": behaviour.error_type or _ERROR_TYPES.get(behaviour.code, "server_error"),
            "param": None,
            "code": behaviour.error_code or _ERROR_CODES.get(behaviour.code),
        }
        headers = {"x-request-id": f"req_test_{next(self._ids)}"}
        if behaviour.retry_after is not None:
            headers["retry-after"] = str(behaviour.retry_after)
        return web.json_response({"error": error}, status=behaviour.code, headers=headers)

    def _usage(self, text: str) -> dict[str, int]:
        output = len(text.split()) or 1
        return {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": output,
            "total_tokens": PROMPT_TOKENS + output,
        }

    def _completion(self, body: dict[str, Any], behaviour: Ok) -> dict[str, Any]:
        message = {"role": "assistant", "content": behaviour.text}
        return {
            "id": f"chatcmpl-test-{next(self._ids)}",
            "object": "chat.completion",
            "created": CREATED,
            "model": body.get("model", "unknown"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": self._usage(behaviour.text),
        }

    def _chunk(
        self, body: dict[str, Any], ident: str, choices: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": body.get("model", "unknown"),
            "choices": choices,
            **extra,
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], behaviour: Ok | Cut | StreamError
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        ident = f"chatcmpl-test-{next(self._ids)}"
        delay = behaviour.delay if isinstance(behaviour, Ok) else 0.0
        stop_after = None if isinstance(behaviour, Ok) else behaviour.after
        chunks = _split(behaviour.text, behaviour.chunks)

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "finish_reason": finish}]

        try:
            await response.write(_sse(self._chunk(body, ident, choice({"role": "assistant"}))))
            for sent, text in enumerate(chunks):
                if sent == stop_after:
                    return await self._break_off(request, response, behaviour)
                if delay:
                    await asyncio.sleep(delay)
                await response.write(_sse(self._chunk(body, ident, choice({"content": text}))))
            await response.write(_sse(self._chunk(body, ident, choice({}, "stop"))))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = self._usage(behaviour.text)
                await response.write(_sse(self._chunk(body, ident, [], usage=usage)))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away (an idle timeout, a cancelled test)
        return response

    async def _break_off(
        self, request: web.Request, response: web.StreamResponse, behaviour: Ok | Cut | StreamError
    ) -> web.StreamResponse:
        if isinstance(behaviour, StreamError):
            error = {"message": "scripted stream error", "type": behaviour.error_type}
            await response.write(_sse({"error": error}))
            await response.write_eof()
            return response
        # Drop the connection mid-body: no finish_reason, no [DONE].
        assert request.transport is not None
        request.transport.abort()
        return response


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()
