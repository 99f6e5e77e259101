"""Run an ASGI app under uvicorn on a free loopback port, inside the test's event loop.

The socket is bound before the server starts (no port race). Teardown asks the server to
exit and awaits its task, so the app's lifespan shutdown has finished when the block ends.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn


@dataclass
class RunningServer:
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]


class StartupFailed(RuntimeError):
    """The app's lifespan failed to start (uvicorn logged why)."""


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # uvicorn exits the process when start-up fails; inside a task that would stop
        # the test's event loop itself.
        raise StartupFailed(f"the app failed to start (exit status {exc.code})") from None


@asynccontextmanager
async def serve(app: Any, *, host: str = "127.0.0.1") -> AsyncIterator[RunningServer]:
    """Serve `app` until the block ends; yields the base URL, the server and its task."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    task = asyncio.create_task(_serve(server, sock), name=f"uvicorn:{port}")
    try:
        while not server.started:
            if task.done():
                await task  # re-raises a start-up failure
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.01)
        yield RunningServer(f"http://{host}:{port}", server, task)
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()
