"""Real clients for the e2e tests: an httpx client that logs in, and a Socket.IO client
that records every event it receives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import socketio

from tests.support.seed import PASSWORD


async def login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await http.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert isinstance(token, str)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class SocketClient:
    """A connected Socket.IO client and everything pushed to it, in order."""

    sio: socketio.AsyncClient
    events: list[tuple[str, Any]] = field(default_factory=list)

    def of(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def send(self, payload: Any) -> dict[str, Any]:
        """`message:send` and wait for its acknowledgement."""
        ack = await self.sio.call("message:send", payload, timeout=30)
        assert isinstance(ack, dict)
        return ack


@asynccontextmanager
async def connected(url: str, token: str | None) -> AsyncIterator[SocketClient]:
    """A Socket.IO client connected over WebSocket with `auth={"token": token}`."""
    sio = socketio.AsyncClient(reconnection=False)
    client = SocketClient(sio)

    async def record(event: str, data: Any = None) -> None:
        client.events.append((event, data))

    sio.on("*", record)
    auth = {"token": token} if token is not None else None
    await sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=15)
    try:
        yield client
    finally:
        await sio.disconnect()
        await sio.shutdown()
