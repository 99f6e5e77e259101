"""The app's lifespan owns every background task and resource: they exist while it runs,
and are gone after shutdown. A shutdown in the middle of a reply loses nothing: the
mention goes back to pending and is answered, exactly once, after the next start."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from neolith_orchestrator.app import SESSION_SWEEP_TASK, create_app
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import JobStatus, MentionJob, Message
from tests.conftest import make_settings
from tests.e2e.clients import bearer, login
from tests.e2e.conftest import Live, e2e_settings, running
from tests.support.model_server import ModelServer, ok, slow
from tests.support.seed import Org
from tests.support.server import StartupFailed, serve
from tests.support.waiting import eventually


def _named(name: str) -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == name]


async def test_background_tasks_live_with_the_app_and_die_with_it(
    database_url: str, acme: Org
) -> None:
    async with running(e2e_settings(database_url)) as live:
        (sweep,) = _named(SESSION_SWEEP_TASK)
        assert live.ctx.tasks == [sweep]
        assert not sweep.done()
        await login(live.http, "ada@acme.test")
        assert live.ctx.manager.get_running_daemons()
        manager = live.ctx.manager
    assert sweep.cancelled()
    assert not manager.running
    assert manager.get_running_daemons() == []
    assert _named(SESSION_SWEEP_TASK) == []


async def test_readyz_reports_ready_only_while_running(live: Live) -> None:
    assert (await live.http.get("/readyz")).status_code == 200
    assert live.ctx.ready


async def _replies(database: Database, mention_id: str) -> list[Message]:
    async with database.transaction() as session:
        rows = await session.scalars(
            select(Message).where(Message.reply_to_id == uuid.UUID(mention_id))
        )
        return list(rows)


async def test_a_shutdown_mid_reply_loses_nothing(
    database_url: str, database: Database, acme: Org
) -> None:
    async with ModelServer() as model:
        # The first reply is too slow to finish within the stop grace; the second is quick.
        model.script(slow("Never finished.", delay=30), ok("Answered after the restart."))
        settings = e2e_settings(
            database_url,
            anthropic_api_key="test-key",
            anthropic_base_url=model.url,
            anthropic_max_retries=0,
            daemon_stop_grace=300,
        )
        async with running(settings) as live:
            await login(live.http, "ada@acme.test")
            pat = await login(live.http, "pat@acme.test")
            posted = await live.http.post(
                f"/api/channels/{acme.channel_id}/messages",
                json={"content": "@ada please think hard"},
                headers=bearer(pat),
            )
            mention_id = posted.json()["id"]
            await eventually(lambda: model.in_flight == 1)
        async with database.transaction() as session:
            (job,) = await session.scalars(select(MentionJob))
            assert job.status == JobStatus.PENDING.value
        assert await _replies(database, mention_id) == []

        async with running(settings):  # ada's session is still live: her daemon returns
            replies = await eventually(lambda: _replies(database, mention_id))
        assert [r.content for r in replies] == ["Answered after the restart."]
        async with database.transaction() as session:
            (job,) = await session.scalars(select(MentionJob))
            assert job.status == JobStatus.DONE.value


async def test_a_failed_start_releases_everything(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/db.sqlite")
    app = create_app(settings)
    with pytest.raises(StartupFailed):
        async with serve(app):
            pass
    assert app.context is None
    assert _named(SESSION_SWEEP_TASK) == []
