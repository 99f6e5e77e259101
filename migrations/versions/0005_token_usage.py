"""token budgets: organizations.monthly_token_budget and the token_usage table

Each reply's token counts (by organization, orchestrator, provider and model) are kept so
that an organization's monthly budget can be enforced and its usage reported.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable, no default) on both databases: no table rebuild.
    op.add_column(
        "organizations", sa.Column("monthly_token_budget", sa.BigInteger(), nullable=True)
    )
    op.create_table(
        "token_usage",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("orchestrator_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["orchestrator_id"],
            ["orchestrators.id"],
            name=op.f("fk_token_usage_orchestrator_id_orchestrators"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_token_usage_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_token_usage")),
    )
    op.create_index(
        "ix_token_usage_org_created", "token_usage", ["organization_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_token_usage_org_created", table_name="token_usage")
    op.drop_table("token_usage")
    # Not batch mode: rebuilding `organizations` on SQLite would cascade-delete every
    # tenant's rows. SQLite 3.35+ drops a column in place.
    op.drop_column("organizations", "monthly_token_budget")
