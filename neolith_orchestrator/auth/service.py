"""Login, logout and bearer authentication.

Unknown e-mail and wrong password fail the same way, after the same amount of work (an
unknown e-mail is verified against a dummy hash). Password checks run in a worker thread.
Failures are throttled per account and per client address (`auth.throttle`; with Redis,
across every instance: `auth.shared_throttle`). Orchestrator
logins and logouts are passed on to the `SessionWatcher`, which drives their daemons.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import func, select

from neolith_orchestrator.auth import sessions
from neolith_orchestrator.auth.passwords import dummy_hash, verify_password
from neolith_orchestrator.auth.shared_throttle import SharedAttempt, SharedLoginThrottle
from neolith_orchestrator.auth.throttle import Attempt, LoginThrottle
from neolith_orchestrator.auth.watcher import SessionWatcher
from neolith_orchestrator.chat.notify import SESSIONS_CHANNEL, notify
from neolith_orchestrator.config import Settings
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import User
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import AuthenticationFailed, TooManyRequests

_log = logging.getLogger(__name__)

BAD_CREDENTIALS = "invalid email or password"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the user and the session their token belongs to."""

    user: User
    session_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    principal: Principal


@dataclass
class AuthCounters:
    """Totals exposed on /metrics."""

    logins: int = 0
    failures: int = 0
    throttled: int = 0
    logouts: int = 0


class Authenticator:
    """The auth edge: owns its transactions, the throttle, and the hand-off to the watcher."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        watcher: SessionWatcher,
        *,
        throttle: LoginThrottle | None = None,
        redis: Redis | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.watcher = watcher
        self.throttle = throttle or LoginThrottle(
            settings.auth_max_failures, settings.auth_failure_window
        )
        # Several instances count failures together in Redis; `throttle` stands in for it
        # while Redis is unreachable.
        self.shared_throttle = (
            None
            if redis is None
            else SharedLoginThrottle(
                redis, self.throttle, settings.auth_max_failures, settings.auth_failure_window
            )
        )
        self.ttl = timedelta(milliseconds=settings.auth_session_ttl)
        self.counters = AuthCounters()
        self._clock = clock

    async def login(
        self, email: str, password: str, *, client_address: str | None = None
    ) -> LoginResult:
        """Check the password and open a session; raises `AuthenticationFailed` or
        `TooManyRequests`."""
        account = email.strip().lower()
        try:
            attempt = await self._attempt(account, client_address)
        except TooManyRequests:
            self.counters.throttled += 1
            raise
        async with self.database.transaction() as session:
            user = await session.scalar(select(User).where(func.lower(User.email) == account))
        stored = user.password_hash if user is not None else await asyncio.to_thread(dummy_hash)
        if not await verify_password(password, stored) or user is None:
            self.counters.failures += 1
            raise AuthenticationFailed(BAD_CREDENTIALS)
        if isinstance(attempt, SharedAttempt) and self.shared_throttle is not None:
            await self.shared_throttle.succeeded(attempt)
        elif isinstance(attempt, Attempt):
            self.throttle.succeeded(attempt)
        async with self.database.transaction() as session:
            token, row = await sessions.create_session(
                session, user, ttl=self.ttl, now=self._clock(), client_address=client_address
            )
        self.counters.logins += 1
        _log.info("user %s logged in (session %s)", user.id, row.id)
        await self.watcher.logged_in(user)
        return LoginResult(token, Principal(user, row.id, row.expires_at))

    async def _attempt(self, account: str, address: str | None) -> SharedAttempt | Attempt:
        if self.shared_throttle is not None:
            return await self.shared_throttle.attempt(account, address)
        return self.throttle.attempt(account, address)

    async def authenticate(self, token: object) -> Principal:
        """The principal behind a bearer token, or `AuthenticationFailed`."""
        async with self.database.transaction() as session:
            row, user = await sessions.resolve_token(session, token, now=self._clock())
        return Principal(user, row.id, row.expires_at)

    async def logout(self, principal: Principal) -> None:
        """Revoke the caller's session; an orchestrator's daemon stops with its last one."""
        async with self.database.transaction() as session:
            await sessions.revoke_session(session, principal.session_id, now=self._clock())
            if principal.user.is_orchestrator:
                # At commit: the instance running its daemon, maybe not this one, looks now.
                await notify(session, [principal.user.id], SESSIONS_CHANNEL)
        self.counters.logouts += 1
        _log.info("user %s logged out (session %s)", principal.user.id, principal.session_id)
        if principal.user.is_orchestrator:
            await self.watcher.session_ended(principal.user.id)
