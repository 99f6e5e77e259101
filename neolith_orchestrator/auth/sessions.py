"""Auth sessions in the database: create, resolve, revoke, and the queries the expiry
sweep needs. Session first, flush only; the caller owns the transaction."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.auth.tokens import hash_token, looks_like_token, new_token
from neolith_orchestrator.db.models import AuthSession, User
from neolith_orchestrator.errors import AuthenticationFailed

# Writing last_seen_at on every request would turn each read into a write.
_LAST_SEEN_RESOLUTION = timedelta(minutes=1)
# Dead sessions are kept a while so "why was I logged out" can still be answered.
_KEEP_DEAD = timedelta(days=1)


def _live(now: datetime) -> list[ColumnElement[bool]]:
    return [AuthSession.revoked_at.is_(None), AuthSession.expires_at > now]


async def create_session(
    session: AsyncSession,
    user: User,
    *,
    ttl: timedelta,
    now: datetime,
    client_address: str | None = None,
) -> tuple[str, AuthSession]:
    """Open a session for `user`; returns the token (never stored) and the row."""
    token = new_token()
    row = AuthSession(
        organization_id=user.organization_id,
        user_id=user.id,
        token_hash=hash_token(token),
        created_at=now,
        expires_at=now + ttl,
        last_seen_at=now,
        client_address=(client_address or None) and client_address[:64],
    )
    session.add(row)
    await session.flush()
    return token, row


async def resolve_token(
    session: AsyncSession, token: object, *, now: datetime
) -> tuple[AuthSession, User]:
    """The live session and user behind `token`, or `AuthenticationFailed`."""
    if not looks_like_token(token):
        raise AuthenticationFailed("missing or malformed token")
    assert isinstance(token, str)
    row = (
        await session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.token_hash == hash_token(token), *_live(now))
        )
    ).first()
    if row is None:
        raise AuthenticationFailed("invalid or expired token")
    auth_session, user = row[0], row[1]
    if auth_session.last_seen_at is None or now - auth_session.last_seen_at > _LAST_SEEN_RESOLUTION:
        auth_session.last_seen_at = now
        await session.flush()
    return auth_session, user


async def revoke_session(
    session: AsyncSession, session_id: uuid.UUID, *, now: datetime
) -> AuthSession | None:
    """Revoke one session; None when it was already gone."""
    row = await session.get(AuthSession, session_id)
    if row is None or row.revoked_at is not None:
        return None
    row.revoked_at = now
    await session.flush()
    return row


def live_users(now: datetime) -> Select[uuid.UUID]:
    """The ids of users holding a live session, as a subquery."""
    return select(AuthSession.user_id).where(*_live(now))


async def live_user_ids(
    session: AsyncSession, user_ids: set[uuid.UUID], *, now: datetime
) -> set[uuid.UUID]:
    """Which of `user_ids` still hold at least one live session."""
    if not user_ids:
        return set()
    rows = await session.scalars(
        select(AuthSession.user_id).where(AuthSession.user_id.in_(user_ids), *_live(now)).distinct()
    )
    return set(rows)


async def orchestrators_with_live_sessions(session: AsyncSession, *, now: datetime) -> list[User]:
    """Orchestrator users holding a live session (their daemons should be running)."""
    rows = await session.scalars(
        select(User)
        .where(User.is_orchestrator.is_(True), User.id.in_(live_users(now)))
        .order_by(User.id)
    )
    return list(rows)


async def next_expiry(
    session: AsyncSession, user_ids: set[uuid.UUID], *, now: datetime
) -> datetime | None:
    """When the first live session of `user_ids` expires."""
    if not user_ids:
        return None
    return await session.scalar(
        select(func.min(AuthSession.expires_at)).where(
            AuthSession.user_id.in_(user_ids), *_live(now)
        )
    )


async def purge_dead_sessions(session: AsyncSession, *, now: datetime) -> int:
    """Delete sessions that expired or were revoked more than a day ago."""
    cutoff = now - _KEEP_DEAD
    result = await session.execute(
        delete(AuthSession).where(
            or_(AuthSession.expires_at < cutoff, AuthSession.revoked_at < cutoff)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
