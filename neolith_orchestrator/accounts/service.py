"""Create and read organizations, users and orchestrators. Session first, flush only."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.ai.charter import Charter, parse_charter
from neolith_orchestrator.auth.passwords import hash_password
from neolith_orchestrator.chat.mentions import is_valid_handle, normalize_handle
from neolith_orchestrator.db.models import Orchestrator, Organization, User
from neolith_orchestrator.errors import Conflict, NotFound, ValidationFailed

_SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PASSWORD_MIN = 8


async def create_organization(
    session: AsyncSession, slug: str, name: str | None = None
) -> Organization:
    slug = slug.strip().lower()
    if not _SLUG_RE.fullmatch(slug):
        raise ValidationFailed("slug: use 1 to 64 lower-case letters, digits and dashes")
    if await session.scalar(select(Organization.id).where(Organization.slug == slug)):
        raise Conflict(f"organization {slug!r} already exists")
    org = Organization(slug=slug, name=(name or slug).strip()[:200])
    session.add(org)
    await session.flush()
    return org


async def get_organization_by_slug(session: AsyncSession, slug: str) -> Organization:
    org = await session.scalar(
        select(Organization).where(Organization.slug == slug.strip().lower())
    )
    if org is None:
        raise NotFound(f"organization {slug!r} not found")
    return org


def _default_handle(name: str) -> str:
    handle = re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-._")
    return handle[:64] or "user"


async def create_user(
    session: AsyncSession,
    org: Organization,
    *,
    email: str,
    name: str,
    password: str,
    handle: str | None = None,
    is_admin: bool = False,
    charter: Charter | dict[str, Any] | None = None,
) -> User:
    """Create a person, or an orchestrator when a charter is given (its user and its
    orchestrator row together)."""
    email = email.strip().lower()
    if not _EMAIL_RE.fullmatch(email) or len(email) > 320:
        raise ValidationFailed("email: not a valid address")
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationFailed("name: must be 1 to 200 characters")
    if len(password) < PASSWORD_MIN:
        raise ValidationFailed(f"password: must be at least {PASSWORD_MIN} characters")
    handle = normalize_handle(handle) if handle else _default_handle(name)
    if not is_valid_handle(handle):
        raise ValidationFailed("handle: use letters, digits, '_', '.', '-' (at most 64)")
    parsed = (
        None
        if charter is None
        else (charter if isinstance(charter, Charter) else parse_charter(charter))
    )
    if await session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise Conflict("a user with that email already exists")
    if await session.scalar(
        select(User.id).where(User.organization_id == org.id, User.handle == handle)
    ):
        raise Conflict(f"handle @{handle} is taken in this organization")
    user = User(
        organization_id=org.id,
        email=email,
        name=name,
        handle=handle,
        password_hash=await hash_password(password),
        is_admin=is_admin,
        is_orchestrator=parsed is not None,
        orchestrator_config=parsed.to_config() if parsed else None,
    )
    session.add(user)
    await session.flush()
    if parsed is not None:
        session.add(
            Orchestrator(
                user_id=user.id,
                organization_id=org.id,
                discipline=parsed.discipline,
                role=parsed.role,
                capabilities=list(parsed.capabilities),
            )
        )
        await session.flush()
    return user


async def update_charter(
    session: AsyncSession, orchestrator: Orchestrator, charter: Charter
) -> None:
    user = await session.get(User, orchestrator.user_id)
    assert user is not None
    user.orchestrator_config = charter.to_config()
    orchestrator.discipline = charter.discipline
    orchestrator.role = charter.role
    orchestrator.capabilities = list(charter.capabilities)
    await session.flush()


async def get_user(session: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> User:
    user = await session.scalar(
        select(User).where(User.organization_id == org_id, User.id == user_id)
    )
    if user is None:
        raise NotFound("user not found")
    return user


async def get_orchestrator(
    session: AsyncSession, org_id: uuid.UUID, orchestrator_id: uuid.UUID
) -> tuple[Orchestrator, User]:
    row = (
        await session.execute(
            select(Orchestrator, User)
            .join(User, User.id == Orchestrator.user_id)
            .where(Orchestrator.organization_id == org_id, Orchestrator.id == orchestrator_id)
        )
    ).first()
    if row is None:
        raise NotFound("orchestrator not found")
    return row[0], row[1]


async def orchestrator_for_user(session: AsyncSession, user_id: uuid.UUID) -> Orchestrator | None:
    return await session.scalar(select(Orchestrator).where(Orchestrator.user_id == user_id))


async def list_orchestrators(
    session: AsyncSession, org_id: uuid.UUID
) -> list[tuple[Orchestrator, User]]:
    rows = await session.execute(
        select(Orchestrator, User)
        .join(User, User.id == Orchestrator.user_id)
        .where(Orchestrator.organization_id == org_id)
        .order_by(User.handle)
    )
    return [(o, u) for o, u in rows.all()]


async def list_users(session: AsyncSession, org_id: uuid.UUID) -> list[User]:
    """The organization's directory (people and orchestrators), by handle."""
    rows = await session.scalars(
        select(User).where(User.organization_id == org_id).order_by(User.handle)
    )
    return list(rows)
