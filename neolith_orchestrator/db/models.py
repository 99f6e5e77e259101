"""The typed ORM. Every tenant-owned row carries `organization_id`; relationships are
`lazy="raise"` so an accidental lazy load under asyncio fails loudly."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from neolith_orchestrator.db.types import UTCDateTime, utcnow
from neolith_orchestrator.ids import new_id

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, uuid.UUID: Uuid}


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=new_id)


def _org_fk() -> Mapped[uuid.UUID]:
    return mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow)


class OrchestratorStatus(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    BUSY = "BUSY"
    ERROR = "ERROR"


class JobStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[uuid.UUID] = _pk()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Tokens (input + output) a calendar month; None: ORG_MONTHLY_TOKEN_BUDGET; 0: unlimited.
    monthly_token_budget: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = _created()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("organization_id", "handle"),)

    id: Mapped[uuid.UUID] = _pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    handle: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_orchestrator: Mapped[bool] = mapped_column(Boolean, default=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    orchestrator_config: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = _created()


class Orchestrator(Base):
    __tablename__ = "orchestrators"

    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    organization_id: Mapped[uuid.UUID] = _org_fk()
    discipline: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(200), default="")
    capabilities: Mapped[list[str]] = mapped_column(JSON, default=list)
    daemon_endpoint: Mapped[str | None] = mapped_column(String(500), default=None)
    status: Mapped[str] = mapped_column(String(16), default=OrchestratorStatus.OFFLINE.value)
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # What the orchestrator says it is doing (its update_status action), shown to people.
    status_message: Mapped[str | None] = mapped_column(String(200), default=None)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[uuid.UUID] = _pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    name: Mapped[str] = mapped_column(String(80))
    topic: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = _created()


class ChannelMember(Base):
    __tablename__ = "channel_members"

    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    organization_id: Mapped[uuid.UUID] = _org_fk()
    joined_at: Mapped[datetime] = _created()


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_channel_created", "channel_id", "created_at", "id"),
        # A channel's latest messages by id (reply context, message pages).
        Index("ix_messages_channel_id", "channel_id", "id"),
        # A client's re-sent post finds the stored one (NULLs are distinct: no client_id,
        # no constraint).
        Index(
            "uq_messages_client_id",
            "organization_id",
            "channel_id",
            "author_id",
            "client_id",
            unique=True,
        ),
    )

    id: Mapped[uuid.UUID] = _pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    content: Mapped[str] = mapped_column(Text)
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    # The job this message answers: unique, so a job can never be answered twice.
    # Plain column, not a foreign key (mention_jobs already points here; a cycle would
    # need ALTER TABLE, which SQLite lacks).
    mention_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True, default=None)
    # Orchestrator-to-orchestrator chain depth: 0 for a person's message.
    chain_depth: Mapped[int] = mapped_column(Integer, default=0)
    # The id the client gave this post (idempotent re-sends); None for most messages.
    client_id: Mapped[str | None] = mapped_column(String(64), default=None)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = _created()


class AuthSession(Base):
    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = _pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    client_address: Mapped[str | None] = mapped_column(String(64), default=None)


class MentionJob(Base):
    __tablename__ = "mention_jobs"
    __table_args__ = (
        UniqueConstraint("orchestrator_id", "message_id"),
        Index("ix_mention_jobs_pending", "orchestrator_id", "status", "created_at"),
        # The heartbeat's "who has due work": without it every sweep reads every job ever.
        Index("ix_mention_jobs_due", "status", "available_at"),
    )

    id: Mapped[uuid.UUID] = _pk()
    organization_id: Mapped[uuid.UUID] = _org_fk()
    orchestrator_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orchestrators.id", ondelete="CASCADE")
    )
    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # When the channel was told the orchestrator cannot answer now (set once, from NULL).
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reply_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class DaemonEvent(Base):
    __tablename__ = "daemon_events"
    __table_args__ = (Index("ix_daemon_events_org_created", "organization_id", "created_at"),)

    id: Mapped[uuid.UUID] = _pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    orchestrator_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orchestrators.id", ondelete="CASCADE"), default=None, index=True
    )
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = _created()


class TokenUsage(Base):
    """What one reply cost: the provider's token counts, kept for budgets and the usage
    report. Rows outlive their orchestrator (the organization spent the tokens)."""

    __tablename__ = "token_usage"
    # The budget check and the monthly report read one organization's rows of one month.
    __table_args__ = (Index("ix_token_usage_org_created", "organization_id", "created_at"),)

    id: Mapped[uuid.UUID] = _pk()
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    orchestrator_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("orchestrators.id", ondelete="SET NULL"), default=None
    )
    # The reply message (a plain column: deleting a channel's messages keeps the spend).
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()
