"""mention_jobs: index (status, available_at) for the heartbeat's due-work query

Each heartbeat sweep asks which orchestrators have a pending job that is due. The only
index on mention_jobs led with orchestrator_id, so the query read every job ever written
(done ones stay for the record): a cost that grew with history, every sweep.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_mention_jobs_due", "mention_jobs", ["status", "available_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_mention_jobs_due", table_name="mention_jobs")
