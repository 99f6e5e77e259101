"""Token usage and monthly budgets. Every reply's token counts are kept in `token_usage` (by
organization, orchestrator, provider and model). An organization may spend its budget of
tokens (input + output) per calendar month, UTC: its own `monthly_token_budget`, else
ORG_MONTHLY_TOKEN_BUDGET; 0 is unlimited. The budget is checked before each model call, so
the reply that crosses it still completes; after that, mentions get a notice instead of a
model call, and the organization's admins get one `daemon:budget-exhausted` event per month
and budget (to the admin room, then in the event log; a reply cancelled between the two
repeats the push on its retry rather than lose it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.ai.generator import ReplyResult
from neolith_orchestrator.config import Settings
from neolith_orchestrator.db.models import DaemonEvent, Orchestrator, Organization, TokenUsage, User
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import ValidationFailed
from neolith_orchestrator.realtime.emitter import admin_room

if TYPE_CHECKING:
    from neolith_orchestrator.daemons.reply import Identity, ReplyServices

BUDGET_EXHAUSTED = "daemon:budget-exhausted"
_INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month, UTC: `start` inclusive, `end` exclusive."""

    label: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, when: datetime) -> Month:
        start = datetime(when.year, when.month, 1, tzinfo=UTC)
        end = datetime(when.year + when.month // 12, when.month % 12 + 1, 1, tzinfo=UTC)
        return cls(f"{when.year:04d}-{when.month:02d}", start, end)

    @classmethod
    def parse(cls, text: str | None) -> Month:
        """`YYYY-MM`, or this month when None; `ValidationFailed` naming `month` otherwise."""
        if text is None:
            return cls.of(utcnow())
        try:
            when = datetime.strptime(text.strip(), "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise ValidationFailed(f"month: use YYYY-MM, e.g. 2026-11 (got {text!r})") from None
        return cls.of(when)


@dataclass(frozen=True, slots=True)
class Budget:
    """An organization's budget for one month and what it has used of it."""

    limit: int  # 0: unlimited
    source: Literal["organization", "default"]
    used: int
    month: Month

    @property
    def exhausted(self) -> bool:
        return self.limit > 0 and self.used >= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "monthly_tokens": self.limit,
            "unlimited": self.limit == 0,
            "source": self.source,
            "used": self.used,
            "remaining": None if self.limit == 0 else max(0, self.limit - self.used),
            "exhausted": self.exhausted,
            "renews_at": self.month.end.isoformat(),
        }


def counted_tokens(usage: dict[str, int]) -> tuple[int, int]:
    """(input, output) tokens of a reply. Input includes cache writes and reads, so both
    providers count alike (OpenAI's prompt_tokens already include cached ones)."""
    return sum(usage.get(key, 0) for key in _INPUT_KEYS), usage.get("output_tokens", 0)


async def record(
    session: AsyncSession, identity: Identity, message_id: uuid.UUID, result: ReplyResult
) -> None:
    """Keep one reply's usage (in the transaction that stores the reply)."""
    input_tokens, output_tokens = counted_tokens(result.usage)
    session.add(
        TokenUsage(
            organization_id=identity.organization_id,
            orchestrator_id=identity.orchestrator_id,
            message_id=message_id,
            provider=(result.provider or "unknown")[:32],
            model=result.model[:200],
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )
    )


async def budget(
    session: AsyncSession, settings: Settings, organization_id: uuid.UUID, month: Month
) -> Budget:
    """The organization's budget for `month` and its use (summed only when limited)."""
    own = await session.scalar(
        select(Organization.monthly_token_budget).where(Organization.id == organization_id)
    )
    limit = settings.org_monthly_token_budget if own is None else own
    source: Literal["organization", "default"] = "default" if own is None else "organization"
    used = 0
    if limit > 0:
        used = (
            await session.scalar(
                select(
                    func.coalesce(func.sum(TokenUsage.input_tokens + TokenUsage.output_tokens), 0)
                ).where(
                    TokenUsage.organization_id == organization_id,
                    TokenUsage.created_at >= month.start,
                    TokenUsage.created_at < month.end,
                )
            )
            or 0
        )
    return Budget(limit=limit, source=source, used=int(used), month=month)


async def refusal(services: ReplyServices, identity: Identity) -> str | None:
    """None while the organization may call the model; else why not (the notice's reason),
    after telling its admins once per month and budget."""

    async def check(session: AsyncSession) -> tuple[Budget, bool]:
        found = await budget(
            session, services.settings, identity.organization_id, Month.of(utcnow())
        )
        return found, found.exhausted and await _told(session, identity, found)

    found, told = await services.database.run(check, name="reply:budget")
    if not found.exhausted:
        return None
    if not told:
        payload = {
            "orchestrator_id": str(identity.orchestrator_id),
            "month": found.month.label,
            "budget": found.limit,
            "used": found.used,
        }
        # What the event reports is already committed (the usage rows). It is pushed first
        # and logged second, so a reply cancelled in between (its daemon restarted) tells
        # the admins again when the mention is retried, rather than never.
        await services.emitter.emit(
            "daemon:event",
            {"type": BUDGET_EXHAUSTED, **payload},
            room=admin_room(identity.organization_id),
        )

        async def log(session: AsyncSession) -> None:
            session.add(
                DaemonEvent(
                    organization_id=identity.organization_id,
                    orchestrator_id=identity.orchestrator_id,
                    type=BUDGET_EXHAUSTED,
                    payload=payload,
                )
            )

        await services.database.run(log, name="reply:budget-event")
    return (
        f"this organization's monthly token budget is spent ({found.used:,} of "
        f"{found.limit:,} tokens used in {found.month.label}); replies resume on "
        f"{found.month.end:%Y-%m-%d} or when an administrator raises the budget"
    )


async def _told(session: AsyncSession, identity: Identity, found: Budget) -> bool:
    """Whether this month's event log already has the exhaustion of this budget."""
    payloads = await session.scalars(
        select(DaemonEvent.payload).where(
            DaemonEvent.organization_id == identity.organization_id,
            DaemonEvent.type == BUDGET_EXHAUSTED,
            DaemonEvent.created_at >= found.month.start,
        )
    )
    return any((payload or {}).get("budget") == found.limit for payload in payloads)


async def report(
    session: AsyncSession, settings: Settings, organization_id: uuid.UUID, month: Month
) -> dict[str, Any]:
    """The organization's usage in `month`, by orchestrator, provider and model."""
    tokens_in, tokens_out = func.sum(TokenUsage.input_tokens), func.sum(TokenUsage.output_tokens)
    rows = await session.execute(
        select(
            TokenUsage.orchestrator_id,
            User.handle,
            User.name,
            TokenUsage.provider,
            TokenUsage.model,
            func.count(),
            tokens_in,
            tokens_out,
        )
        .outerjoin(Orchestrator, Orchestrator.id == TokenUsage.orchestrator_id)
        .outerjoin(User, User.id == Orchestrator.user_id)
        .where(
            TokenUsage.organization_id == organization_id,
            TokenUsage.created_at >= month.start,
            TokenUsage.created_at < month.end,
        )
        .group_by(
            TokenUsage.orchestrator_id,
            User.handle,
            User.name,
            TokenUsage.provider,
            TokenUsage.model,
        )
        .order_by(User.handle, TokenUsage.provider, TokenUsage.model)
    )
    items: list[dict[str, Any]] = [
        {
            "orchestrator_id": str(orchestrator_id) if orchestrator_id else None,
            "handle": handle,
            "name": name,
            "provider": provider,
            "model": model,
            "replies": replies,
            "input_tokens": int(used_in or 0),
            "output_tokens": int(used_out or 0),
            "total_tokens": int(used_in or 0) + int(used_out or 0),
        }
        for orchestrator_id, handle, name, provider, model, replies, used_in, used_out in rows
    ]
    totals = dict.fromkeys(("replies", "input_tokens", "output_tokens", "total_tokens"), 0)
    for item in items:
        for key in totals:
            totals[key] += item[key]
    # The month's use is the report's total, limited or not.
    found = replace(
        await budget(session, settings, organization_id, month), used=totals["total_tokens"]
    )
    return {
        "organization_id": str(organization_id),
        "month": month.label,
        "from": month.start.isoformat(),
        "to": month.end.isoformat(),
        "budget": found.as_dict(),
        "totals": totals,
        "items": items,
    }


async def set_budget(session: AsyncSession, organization: Organization, tokens: int | None) -> None:
    """An organization's own monthly budget: tokens (0: unlimited) or None for the default."""
    if tokens is not None and tokens < 0:
        raise ValidationFailed("monthly_token_budget: must be 0 (unlimited) or more")
    organization.monthly_token_budget = tokens
    await session.flush()
