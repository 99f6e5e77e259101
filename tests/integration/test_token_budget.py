"""Token usage per reply and monthly budgets per organization, through the real daemon flow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from neolith_orchestrator.chat import usage
from neolith_orchestrator.db.models import DaemonEvent, Message, Organization, TokenUsage
from neolith_orchestrator.errors import ValidationFailed
from neolith_orchestrator.realtime.emitter import admin_room
from tests.integration.conftest import Stack
from tests.support.seed import Org, seed_org
from tests.support.waiting import eventually

# The scripted model reports 10 input + 5 output tokens per reply.
PER_REPLY = 15


async def _ask(stack: Stack, org: Org, content: str) -> Message:
    """Post a mention and wait for its one answer (a reply or a notice)."""
    mention = await stack.manager.messenger.post(org.person, org.channel_id, content)

    async def answer() -> Message | None:
        async with stack.database.transaction() as session:
            return await session.scalar(
                select(Message).where(Message.reply_to_id == uuid.UUID(mention["id"]))
            )

    return await eventually(answer)


async def _rows(stack: Stack, model: Any) -> list[Any]:
    async with stack.database.transaction() as session:
        return list(await session.scalars(select(model)))


async def test_each_reply_records_its_usage(stack: Stack) -> None:
    org = await seed_org(stack.database)
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    reply = await _ask(stack, org, "@ada hello")
    [row] = await _rows(stack, TokenUsage)
    assert (row.organization_id, row.orchestrator_id, row.message_id) == (
        org.org.id,
        org.orchestrator_ids["ada"],
        reply.id,
    )
    assert (row.provider, row.model, row.input_tokens, row.output_tokens) == (
        "scripted",
        "scripted-1",
        10,
        5,
    )


@pytest.mark.settings(org_monthly_token_budget=2 * PER_REPLY)
async def test_past_the_budget_a_mention_gets_a_notice_and_the_admins_one_event(
    stack: Stack,
) -> None:
    org = await seed_org(stack.database)
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    for n in range(2):
        reply = await _ask(stack, org, f"@ada question {n}")
        assert not reply.meta.get("system"), reply.content
    calls = len(stack.generator.calls)

    notice = await _ask(stack, org, "@ada one more?")
    assert len(stack.generator.calls) == calls  # no model call
    assert notice.meta["system"] is True
    assert "monthly token budget is spent (30 of 30 tokens used" in notice.content
    assert "raises the budget" in notice.content

    await _ask(stack, org, "@ada and again?")
    events = [e for e in await _rows(stack, DaemonEvent) if e.type == usage.BUDGET_EXHAUSTED]
    assert len(events) == 1  # once per month and budget, not once per mention
    assert events[0].payload["budget"] == 30
    assert events[0].payload["used"] == 30
    pushed = [
        (data, room)
        for name, data, room in stack.emitter.events
        if name == "daemon:event" and data["type"] == usage.BUDGET_EXHAUSTED
    ]
    assert [room for _, room in pushed] == [admin_room(org.org.id)]

    # The organization's own budget wins over the default: raised, replies resume.
    async with stack.database.transaction() as session:
        await usage.set_budget(session, await session.get_one(Organization, org.org.id), 0)
    reply = await _ask(stack, org, "@ada back?")
    assert not reply.meta.get("system")
    assert len(stack.generator.calls) == calls + 1


@pytest.mark.settings(org_monthly_token_budget=PER_REPLY)
async def test_last_months_usage_does_not_count(stack: Stack) -> None:
    org = await seed_org(stack.database)
    last_month = usage.Month.of(datetime.now(UTC)).start - timedelta(days=1)
    async with stack.database.transaction() as session:
        session.add(
            TokenUsage(
                organization_id=org.org.id,
                orchestrator_id=org.orchestrator_ids["ada"],
                provider="anthropic",
                model="claude-old",
                input_tokens=1_000,
                output_tokens=1_000,
                created_at=last_month,
            )
        )
    await stack.manager.start_daemon(org.orchestrator_ids["ada"])
    reply = await _ask(stack, org, "@ada new month?")
    assert not reply.meta.get("system")
    async with stack.database.transaction() as session:
        report = await usage.report(session, stack.settings, org.org.id, usage.Month.of(last_month))
    assert report["totals"]["total_tokens"] == 2_000
    assert report["budget"]["exhausted"] is True  # that month's budget, were it enforced now


@pytest.mark.parametrize("text", ["2026-13", "26-01", "november", ""])
def test_a_bad_month_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValidationFailed, match="month: use YYYY-MM"):
        usage.Month.parse(text)


def test_months_end_where_the_next_begins() -> None:
    december = usage.Month.parse("2026-12")
    assert december.start == datetime(2026, 12, 1, tzinfo=UTC)
    assert december.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert usage.Month.parse("2027-01").start == december.end


def test_input_counts_cache_writes_and_reads() -> None:
    counted = usage.counted_tokens(
        {
            "input_tokens": 5,
            "cache_creation_input_tokens": 7,
            "cache_read_input_tokens": 11,
            "output_tokens": 3,
        }
    )
    assert counted == (23, 3)
