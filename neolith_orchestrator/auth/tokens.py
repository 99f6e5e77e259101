"""Bearer tokens: opaque, random, shown to the client once and stored only as a SHA-256 hash.

A token carries 256 bits from `secrets`, so an unsalted fast hash is enough: there is nothing
to brute-force, and a fast hash lets every request look its session up by equality.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "nlo_"
_TOKEN_BYTES = 32
# Longer than any token we issue; anything bigger is refused before hashing.
TOKEN_MAX_LENGTH = 200


def new_token() -> str:
    """A fresh bearer token (the prefix makes leaked tokens easy to recognise in logs)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)


def hash_token(token: str) -> str:
    """The stored form of `token`: 64 lower-case hex characters."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(token: object) -> bool:
    """Cheap shape check before touching the database."""
    return (
        isinstance(token, str)
        and token.startswith(TOKEN_PREFIX)
        and len(token) <= TOKEN_MAX_LENGTH
        and token.isascii()
    )
