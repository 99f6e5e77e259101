"""mention_jobs.notified_at (a waiting mention is told once); messages.client_id (a re-sent
post is stored once)

`notified_at` records when the channel was told that the mentioned orchestrator cannot
answer now; the notice is written only by the UPDATE that sets it from NULL, so a mention is
told at most once whoever tries. `client_id` is the id a client gives a post; the unique
index on (organization, channel, author, client_id) makes a re-send, even a concurrent one,
find the stored message instead of writing a second (NULLs are distinct: posts without one
are unaffected).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 05:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mention_jobs") as batch:
        batch.add_column(sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("client_id", sa.String(length=64), nullable=True))
    op.create_index(
        "uq_messages_client_id",
        "messages",
        ["organization_id", "channel_id", "author_id", "client_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_messages_client_id", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("client_id")
    with op.batch_alter_table("mention_jobs") as batch:
        batch.drop_column("notified_at")
