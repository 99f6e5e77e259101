"""Coalesce many small awaited writes into one transaction: callers `submit` a key and await
its result; one owned task flushes everything submitted meanwhile in a single call. This is
what lets ten thousand daemons start in a few statements instead of ten thousand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class Batcher(Generic[K, R]):
    def __init__(
        self,
        name: str,
        flush: Callable[[list[K]], Awaitable[dict[K, R]]],
        *,
        max_batch: int = 2_000,
    ) -> None:
        self.name = name
        self._flush = flush
        self._max_batch = max_batch
        self._pending: dict[K, asyncio.Future[R]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"batcher:{self.name}")

    async def submit(self, key: K) -> R:
        """Queue `key` for the next flush and wait for its result (or its error)."""
        if self._task is None or self._task.done():
            raise RuntimeError(f"batcher {self.name} is not running")
        future = self._pending.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._pending[key] = future
            self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let the current burst of submitters join this batch
            while self._pending:
                keys = list(self._pending)[: self._max_batch]
                futures = [self._pending.pop(k) for k in keys]
                try:
                    results = await self._flush(keys)
                except Exception as exc:
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for key, future in zip(keys, futures, strict=True):
                    if not future.done():
                        if key in results:
                            future.set_result(results[key])
                        else:
                            future.set_exception(KeyError(key))

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RuntimeError(f"batcher {self.name} closed"))
        self._pending.clear()
