"""Build organizations, people, orchestrators and channels straight through the services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from neolith_orchestrator.accounts.service import create_organization, create_user
from neolith_orchestrator.auth.passwords import hash_password_sync
from neolith_orchestrator.chat import service
from neolith_orchestrator.db.engine import Database
from neolith_orchestrator.db.models import (
    ChannelMember,
    Orchestrator,
    Organization,
    User,
)

PASSWORD = "correct horse battery"


@dataclass
class Org:
    org: Organization
    admin: User
    person: User
    channel_id: uuid.UUID
    orchestrators: dict[str, User] = field(default_factory=dict)
    orchestrator_ids: dict[str, uuid.UUID] = field(default_factory=dict)


async def seed_org(
    database: Database, slug: str = "acme", handles: tuple[str, ...] = ("ada",)
) -> Org:
    """An organization with an admin, a person, orchestrators and one channel with all."""
    async with database.transaction() as session:
        org = await create_organization(session, slug, slug.title())
        admin = await create_user(
            session,
            org,
            email=f"admin@{slug}.test",
            name="Admin",
            password=PASSWORD,
            handle="admin",
            is_admin=True,
        )
        person = await create_user(
            session, org, email=f"pat@{slug}.test", name="Pat", password=PASSWORD, handle="pat"
        )
        channel = await service.create_channel(session, admin, "general")
        await service.add_member(session, org.id, channel.id, person.id)
        seeded = Org(org, admin, person, channel.id)
        for handle in handles:
            user = await create_user(
                session,
                org,
                email=f"{handle}@{slug}.test",
                name=handle.title(),
                password=PASSWORD,
                handle=handle,
                charter={"name": handle.title(), "role": "Engineer", "mission": "Help."},
            )
            await service.add_member(session, org.id, channel.id, user.id)
            seeded.orchestrators[handle] = user
    async with database.transaction() as session:
        from sqlalchemy import select

        for handle, user in seeded.orchestrators.items():
            oid = await session.scalar(
                select(Orchestrator.id).where(Orchestrator.user_id == user.id)
            )
            assert oid is not None
            seeded.orchestrator_ids[handle] = oid
    return seeded


async def bulk_orchestrators(database: Database, org: Organization, count: int) -> list[uuid.UUID]:
    """Many orchestrators at once (one shared password hash: hashing is deliberately slow)."""
    password_hash = hash_password_sync(PASSWORD)
    ids: list[uuid.UUID] = []
    async with database.transaction() as session:
        users = [
            User(
                organization_id=org.id,
                email=f"bot{i}@{org.slug}.test",
                name=f"Bot {i}",
                handle=f"bot{i}",
                password_hash=password_hash,
                is_orchestrator=True,
                orchestrator_config={"name": f"Bot {i}"},
            )
            for i in range(count)
        ]
        session.add_all(users)
        await session.flush()
        orchestrators = [Orchestrator(user_id=u.id, organization_id=org.id) for u in users]
        session.add_all(orchestrators)
        await session.flush()
        ids = [o.id for o in orchestrators]
    return ids


async def join(database: Database, org: Organization, channel_id: uuid.UUID, user: User) -> None:
    async with database.transaction() as session:
        session.add(ChannelMember(channel_id=channel_id, user_id=user.id, organization_id=org.id))
