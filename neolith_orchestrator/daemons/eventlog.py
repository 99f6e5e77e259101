"""Reading the daemon event log (admins read their own organization's only)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.db.models import DaemonEvent
from neolith_orchestrator.errors import ValidationFailed


def event_out(event: DaemonEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "organization_id": str(event.organization_id),
        "orchestrator_id": str(event.orchestrator_id) if event.orchestrator_id else None,
        "type": event.type,
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }


async def list_events(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    orchestrator_id: uuid.UUID | None = None,
    limit: int = 100,
    before: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Newest first; `before` (an event id) pages back."""
    if limit < 1 or limit > 500:
        raise ValidationFailed("limit: must be between 1 and 500")
    stmt = select(DaemonEvent).where(DaemonEvent.organization_id == org_id)
    if orchestrator_id is not None:
        stmt = stmt.where(DaemonEvent.orchestrator_id == orchestrator_id)
    if before is not None:
        stmt = stmt.where(DaemonEvent.id < before)
    rows = await session.scalars(stmt.order_by(DaemonEvent.id.desc()).limit(limit))
    return [event_out(e) for e in rows]
