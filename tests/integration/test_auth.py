"""Login, tokens and sessions against a real database and a running DaemonManager: an
orchestrator's daemon follows its live sessions (login, logout, expiry, process restart)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from neolith_orchestrator.auth.service import BAD_CREDENTIALS, Authenticator
from neolith_orchestrator.auth.throttle import LoginThrottle
from neolith_orchestrator.auth.watcher import SessionWatcher
from neolith_orchestrator.config import Settings
from neolith_orchestrator.db.models import AuthSession
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import AuthenticationFailed, TooManyRequests
from tests.integration.conftest import Stack, start_stack
from tests.support.seed import PASSWORD, Org, seed_org
from tests.support.waiting import eventually


class Clock:
    """A settable UTC clock for session expiry."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def authenticator(stack: Stack, clock: Clock | None = None, **settings: object) -> Authenticator:
    config: Settings = stack.settings.model_copy(update=settings)
    now = clock or utcnow
    watcher = SessionWatcher(stack.database, stack.manager, clock=now)
    return Authenticator(stack.database, config, watcher, clock=now)


@pytest.fixture
async def acme(stack: Stack) -> Org:
    return await seed_org(stack.database, "acme", ("ada",))


async def test_login_returns_a_token_that_is_stored_only_as_its_hash(
    stack: Stack, acme: Org
) -> None:
    auth = authenticator(stack)
    result = await auth.login("Pat@Acme.test ", PASSWORD, client_address="10.1.2.3")
    assert result.principal.user.id == acme.person.id
    async with stack.database.transaction() as session:
        rows = list(await session.scalars(select(AuthSession)))
    assert len(rows) == 1
    assert rows[0].token_hash == hashlib.sha256(result.token.encode()).hexdigest()
    assert result.token not in str(
        [getattr(rows[0], c.key) for c in AuthSession.__mapper__.columns]
    )
    assert rows[0].client_address == "10.1.2.3"
    assert (await auth.authenticate(result.token)).user.id == acme.person.id


async def test_unknown_email_and_wrong_password_fail_alike(stack: Stack, acme: Org) -> None:
    auth = authenticator(stack)
    with pytest.raises(AuthenticationFailed) as unknown:
        await auth.login("nobody@acme.test", PASSWORD)
    with pytest.raises(AuthenticationFailed) as wrong:
        await auth.login("pat@acme.test", "not the password")
    assert unknown.value.message == wrong.value.message == BAD_CREDENTIALS


async def test_malformed_revoked_and_expired_tokens_are_refused(stack: Stack, acme: Org) -> None:
    clock = Clock()
    auth = authenticator(stack, clock)
    for bad in (None, "", "nlo_" + "x" * 500, "Bearer nonsense", 42, "nlo_unknown"):
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(bad)
    first = await auth.login("pat@acme.test", PASSWORD)
    await auth.logout(first.principal)
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(first.token)
    second = await auth.login("pat@acme.test", PASSWORD)
    clock.now += timedelta(milliseconds=stack.settings.auth_session_ttl)
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(second.token)


async def test_a_daemon_runs_while_its_orchestrator_holds_a_live_session(
    stack: Stack, acme: Org
) -> None:
    auth = authenticator(stack)
    ada = acme.orchestrator_ids["ada"]
    phone = await auth.login("ada@acme.test", PASSWORD)
    laptop = await auth.login("ada@acme.test", PASSWORD)
    assert stack.manager.is_daemon_running(ada)
    await auth.logout(phone.principal)
    assert stack.manager.is_daemon_running(ada)  # the laptop session still lives
    await auth.logout(laptop.principal)
    assert not stack.manager.is_daemon_running(ada)
    assert auth.watcher.online == frozenset()


async def test_a_person_login_starts_no_daemon(stack: Stack, acme: Org) -> None:
    auth = authenticator(stack)
    await auth.login("pat@acme.test", PASSWORD)
    assert stack.manager.get_running_daemons() == []
    assert auth.watcher.online == frozenset()


async def test_the_sweep_stops_a_daemon_whose_last_session_expired(stack: Stack, acme: Org) -> None:
    clock = Clock()
    auth = authenticator(stack, clock)
    ada = acme.orchestrator_ids["ada"]
    await auth.login("ada@acme.test", PASSWORD)
    await auth.watcher.sweep()
    assert stack.manager.is_daemon_running(ada)
    clock.now += timedelta(milliseconds=stack.settings.auth_session_ttl, seconds=1)
    await auth.watcher.sweep()
    assert not stack.manager.is_daemon_running(ada)


async def test_the_sweep_loop_wakes_at_the_expiry(stack: Stack, acme: Org) -> None:
    auth = authenticator(stack, auth_session_ttl=700)
    ada = acme.orchestrator_ids["ada"]
    loop = asyncio.create_task(auth.watcher.run(), name="neolith:test-sweep")
    try:
        await auth.login("ada@acme.test", PASSWORD)
        assert stack.manager.is_daemon_running(ada)
        await eventually(lambda: not stack.manager.is_daemon_running(ada))
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    assert loop.cancelled()


@pytest.fixture
async def second_stack(stack: Stack) -> AsyncIterator[list[Stack]]:
    started: list[Stack] = []
    yield started
    for other in started:
        await other.manager.shutdown()


async def test_daemons_come_back_after_a_restart_for_live_sessions(
    stack: Stack, acme: Org, second_stack: list[Stack]
) -> None:
    auth = authenticator(stack)
    await auth.login("ada@acme.test", PASSWORD)
    ada = acme.orchestrator_ids["ada"]
    await stack.manager.shutdown()  # the process ends; the session stays live
    after = await start_stack(stack.database, stack.settings)
    second_stack.append(after)
    watcher = SessionWatcher(stack.database, after.manager)
    assert await watcher.restore() == 1
    assert after.manager.is_daemon_running(ada)
    assert watcher.online == {acme.orchestrators["ada"].id}


async def test_concurrent_wrong_passwords_cannot_outrun_the_throttle(
    stack: Stack, acme: Org
) -> None:
    auth = authenticator(stack)
    auth.throttle = LoginThrottle(max_failures=3, window_ms=60_000)
    outcomes = await asyncio.gather(
        *(auth.login("pat@acme.test", f"guess {i}") for i in range(8)), return_exceptions=True
    )
    kinds = sorted(type(o).__name__ for o in outcomes)
    assert kinds == ["AuthenticationFailed"] * 3 + ["TooManyRequests"] * 5
    with pytest.raises(TooManyRequests):
        await auth.login("pat@acme.test", PASSWORD)  # even the right password waits
    assert auth.counters.failures == 3
    assert auth.counters.throttled == 6


async def test_long_dead_sessions_are_purged(stack: Stack, acme: Org) -> None:
    clock = Clock()
    auth = authenticator(stack, clock)
    old = await auth.login("pat@acme.test", PASSWORD)
    await auth.logout(old.principal)
    live = await auth.login("pat@acme.test", PASSWORD)
    clock.now += timedelta(days=1, seconds=1)
    await auth.watcher.sweep()
    async with stack.database.transaction() as session:
        remaining = list(await session.scalars(select(AuthSession.id)))
    assert remaining == [live.principal.session_id]
