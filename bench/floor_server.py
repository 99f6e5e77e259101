"""The floor server: what a hand-written chat server on the app's stack does with a message,
and nothing more. python-socketio under uvicorn; SQLite through one aiosqlite connection
(WAL, synchronous=NORMAL, as the app's) or PostgreSQL through an asyncpg pool of 10. It
authenticates a socket at connect by the bearer token's hash in the app's `auth_sessions`,
joins the user's channel rooms, and turns `message:send` into one INSERT (its own
transaction) into the app's `messages` table, a `message:new` push to the room, and an ack
with the stored message. `python -m bench.floor_server --port N`, DATABASE_URL as the app's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import socketio
import uvicorn
from sqlalchemy.engine import make_url

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[])
db: Any = None  # aiosqlite.Connection or asyncpg.Pool
sqlite = not os.environ["DATABASE_URL"].startswith("postgres")
users: dict[str, tuple[uuid.UUID, uuid.UUID, set[str]]] = {}  # sid -> user, org, channels
INSERT = (
    "INSERT INTO messages (id, organization_id, channel_id, author_id, content, chain_depth, "
    "metadata, created_at) VALUES ({}, {}, {}, {}, {}, 0, '{{}}', {})"
)


async def query(sql: str, *args: Any) -> list[Any]:
    if sqlite:
        async with db.execute(sql.replace("$1", "?"), args) as cursor:
            return list(await cursor.fetchall())
    return list(await db.fetch(sql, *args))


def key(value: uuid.UUID) -> Any:
    return value.hex if sqlite else value  # the app stores UUIDs as hex text on SQLite


async def startup() -> None:
    global db
    url = make_url(os.environ["DATABASE_URL"])
    if sqlite:
        import aiosqlite

        db = await aiosqlite.connect(url.database or "", isolation_level=None)
        for pragma in ("foreign_keys=ON", "busy_timeout=30000", "synchronous=NORMAL"):
            await db.execute(f"PRAGMA {pragma}")
    else:
        import asyncpg

        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        db = await asyncpg.create_pool(dsn, min_size=10, max_size=10)


async def shutdown() -> None:
    await db.close()


async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    token = auth.get("token") if isinstance(auth, dict) else None
    digest = hashlib.sha256(str(token).encode()).hexdigest()
    rows = await query(
        "SELECT user_id, organization_id, expires_at FROM auth_sessions "
        "WHERE token_hash = $1 AND revoked_at IS NULL",
        digest,
    )
    now = datetime.now(UTC)
    expires = rows[0][2] if rows else None
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires).replace(tzinfo=UTC)
    if expires is None or expires <= now:
        raise socketio.exceptions.ConnectionRefusedError({"code": "unauthenticated"})
    user, org = (uuid.UUID(str(v)) for v in rows[0][:2])
    channels = {
        str(uuid.UUID(str(r[0])))
        for r in await query("SELECT channel_id FROM channel_members WHERE user_id = $1", key(user))
    }
    users[sid] = (user, org, channels)
    for channel in channels:
        await sio.enter_room(sid, f"channel:{channel}")


async def disconnect(sid: str, reason: Any = None) -> None:
    users.pop(sid, None)


async def message_send(sid: str, data: Any = None) -> dict[str, Any]:
    user, org, channels = users[sid]
    channel = data.get("channel_id") if isinstance(data, dict) else None
    content = data.get("content") if isinstance(data, dict) else None
    if channel not in channels or not isinstance(content, str) or not content.strip():
        return {"ok": False, "error": {"code": "invalid", "message": "channel_id, content"}}
    message_id, now, channel_id = uuid.uuid4(), datetime.now(UTC), uuid.UUID(channel)
    args = [key(message_id), key(org), key(channel_id), key(user), content]
    if sqlite:  # one statement in autocommit mode: its own transaction, committed at once
        await db.execute(INSERT.format(*"??????"), [*args, now.replace(tzinfo=None).isoformat(" ")])
    else:
        await db.execute(INSERT.format("$1", "$2", "$3", "$4", "$5", "$6"), *args, now)
    message = {
        "id": str(message_id),
        "organization_id": str(org),
        "channel_id": channel,
        "author_id": str(user),
        "content": content,
        "reply_to_id": None,
        "created_at": now.isoformat(),
        "metadata": {},
    }
    await sio.emit("message:new", message, room=f"channel:{channel}")
    return {"ok": True, "message": message}


async def readyz(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Everything that is not Socket.IO: 200 on /readyz (the bench waits for it), else 404."""
    status = 200 if scope.get("path") == "/readyz" else 404
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps({"ok": status == 200}).encode()})


sio.on("connect", connect)
sio.on("disconnect", disconnect)
sio.on("message:send", message_send)
app = socketio.ASGIApp(sio, readyz, on_startup=startup, on_shutdown=shutdown)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
