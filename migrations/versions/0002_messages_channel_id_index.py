"""messages: index (channel_id, id) for a channel's latest messages

The reply context ("the 30 messages before the mention") and the message list page both
ask for a channel's messages by id, newest first. Without this index SQLite answered from
the organization index and sorted every message of the organization, so each reply cost
more as the organization's history grew.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_channel_id", "messages", ["channel_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_channel_id", table_name="messages")
