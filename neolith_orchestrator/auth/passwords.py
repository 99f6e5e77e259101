"""Password hashing with argon2 (through passlib's maintained fork, libpass). Hashing is
CPU work, so the async helpers run it in a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import functools

from passlib.context import CryptContext

_context = CryptContext(schemes=["argon2"], deprecated="auto")


def hash_password_sync(password: str) -> str:
    return str(_context.hash(password))


def verify_password_sync(password: str, password_hash: str) -> bool:
    try:
        return bool(_context.verify(password, password_hash))
    except (ValueError, TypeError):
        return False


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hash_password_sync, password)


async def verify_password(password: str, password_hash: str) -> bool:
    return await asyncio.to_thread(verify_password_sync, password, password_hash)


@functools.cache
def dummy_hash() -> str:
    """A real hash to verify against when the e-mail is unknown, so both failures cost the
    same time. Computed on first use, not at import."""
    return hash_password_sync("neolith-timing-equaliser")
