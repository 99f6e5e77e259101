"""Wait for something a user would notice, with a generous bound (never a timing assertion)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]], *, within: float = 15.0, interval: float = 0.01
) -> T:
    """Poll `check` until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s: {check}")
        await asyncio.sleep(interval)


def leftover_tasks(prefixes: tuple[str, ...]) -> list[str]:
    """Names of live tasks that an owner should have cancelled and awaited."""
    current = asyncio.current_task()
    return [
        t.get_name()
        for t in asyncio.all_tasks()
        if t is not current and not t.done() and t.get_name().startswith(prefixes)
    ]
