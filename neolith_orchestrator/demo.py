"""The demo organization: an admin, a person, an orchestrator with a charter, and a channel
with all three. Idempotent: what exists is reused, what is missing is created."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from neolith_orchestrator.accounts import service as accounts
from neolith_orchestrator.chat import service as chat
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import Channel, Organization, User
from neolith_orchestrator.db.types import utcnow
from neolith_orchestrator.errors import Conflict, NotFound

DEMO_SLUG = "demo"
DEMO_CHANNEL = "general"
DEMO_CHARTER: dict[str, Any] = {
    "name": "Ada",
    "role": "Staff engineer",
    "discipline": "Software engineering",
    "mission": "Help the team design, review and debug software.",
    "personality": "Warm, precise and brief; asks one good question when a request is vague.",
    "instructions": [
        "Answer in a few short paragraphs unless asked for more.",
        "Say so when you are unsure, and what would settle it.",
    ],
    "capabilities": ["code review", "architecture advice", "debugging help"],
}


@dataclass(frozen=True, slots=True)
class DemoUser:
    role: str
    email: str
    password: str
    name: str
    handle: str


DEMO_USERS = (
    DemoUser("admin", "admin@demo.example", "demo-admin-password", "Dana Admin", "dana"),
    DemoUser("person", "sam@demo.example", "demo-person-password", "Sam Rivera", "sam"),
    DemoUser("orchestrator", "ada@demo.example", "demo-orchestrator-password", "Ada", "ada"),
)


async def seed_demo(database: Database) -> tuple[DemoUser, ...]:
    """Create (or complete) the demo organization; returns the users and their passwords."""
    async with database.transaction() as session:
        try:
            org = await accounts.get_organization_by_slug(session, DEMO_SLUG)
        except NotFound:
            org = await accounts.create_organization(session, DEMO_SLUG, "Demo Organization")
        users = [await _user(session, org, spec) for spec in DEMO_USERS]
        channel = await session.scalar(
            select(Channel).where(Channel.organization_id == org.id, Channel.name == DEMO_CHANNEL)
        )
        if channel is None:
            channel = await chat.create_channel(
                session, users[0], DEMO_CHANNEL, "Say hello to @ada"
            )
        for user in users:
            await chat.add_member(session, org.id, channel.id, user.id)
    return DEMO_USERS


async def _user(session: AsyncSession, org: Organization, spec: DemoUser) -> User:
    user = await session.scalar(select(User).where(func.lower(User.email) == spec.email))
    if user is not None:
        if user.organization_id != org.id:
            raise Conflict(f"{spec.email} already belongs to another organization")
        return user
    return await accounts.create_user(
        session,
        org,
        email=spec.email,
        name=spec.name,
        password=spec.password,
        handle=spec.handle,
        is_admin=spec.role == "admin",
        charter=DEMO_CHARTER if spec.role == "orchestrator" else None,
    )


async def sign_in_orchestrator(database: Database, ttl: timedelta) -> None:
    """Give the demo orchestrator a live session (unless it has one), so the server brings
    its daemon online at start-up, as it does for any orchestrator still logged in."""
    from neolith_orchestrator.auth.sessions import create_session, live_user_ids

    spec = next(u for u in DEMO_USERS if u.role == "orchestrator")
    async with database.transaction() as session:
        user = await session.scalar(select(User).where(func.lower(User.email) == spec.email))
        if user is None:
            raise NotFound("the demo orchestrator does not exist; run the demo seed first")
        now = utcnow()
        if user.id not in await live_user_ids(session, {user.id}, now=now):
            await create_session(session, user, ttl=ttl, now=now, client_address="demo")


def describe(users: tuple[DemoUser, ...], *, online: bool = False) -> str:
    """The credentials as a short text for the terminal."""
    width = max(len(u.email) for u in users)
    lines = [f'Demo organization "{DEMO_SLUG}" is ready; channel #{DEMO_CHANNEL} has everyone.']
    for user in users:
        lines.append(f"  {user.role:<13} {user.email:<{width}}  password: {user.password}")
    if online:
        lines.append("@ada is logged in: log in as the person and mention @ada in #general.")
    else:
        lines.append("Log in as the orchestrator to bring its daemon online, then mention @ada.")
    return "\n".join(lines)
