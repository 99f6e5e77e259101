"""Password hashing with argon2id (argon2-cffi, the reference binding). Hashing is CPU work,
so the async helpers run it in a worker thread, never on the event loop.

Hashes are PHC strings (`$argon2id$v=19$m=...`), the same format passlib wrote, so stored
hashes keep verifying."""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password_sync(password: str) -> str:
    return _hasher.hash(password)


def verify_password_sync(password: str, password_hash: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
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
