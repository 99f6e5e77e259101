"""Event listeners for daemons and the manager: `on(event, handler)` / `off(event, handler)`.

Handlers may be plain functions or coroutine functions; a coroutine is awaited in place,
so it is never fire-and-forget. A handler that raises is logged and harms nothing.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

Handler = Callable[..., Any]
_log = logging.getLogger(__name__)


class Listeners:
    __slots__ = ("_handlers",)

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] | None = None

    def on(self, event: str, handler: Handler) -> None:
        if self._handlers is None:
            self._handlers = {}
        self._handlers.setdefault(event, []).append(handler)

    def off(self, event: str, handler: Handler) -> None:
        if self._handlers and handler in self._handlers.get(event, ()):
            self._handlers[event].remove(handler)

    def has(self, event: str) -> bool:
        return bool(self._handlers and self._handlers.get(event))

    async def emit(self, event: str, payload: Any) -> None:
        if not self._handlers:
            return
        for handler in list(self._handlers.get(event, ())):
            try:
                result = handler(payload)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.exception("listener for %r failed", event)
