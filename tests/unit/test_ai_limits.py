from __future__ import annotations

import asyncio
import uuid

import pytest

from neolith_orchestrator.ai.limits import ModelLimits
from tests.conftest import make_settings

ORG_A, ORG_B = uuid.uuid4(), uuid.uuid4()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Holder:
    """Runs tasks that hold a slot until released, and records who got in, in order."""

    def __init__(self, limits: ModelLimits) -> None:
        self.limits = limits
        self.entered: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.inside = 0
        self.peak = 0

    def start(self, name: str, org: uuid.UUID) -> asyncio.Task[None]:
        gate = self.gates[name] = asyncio.Event()

        async def hold() -> None:
            async with self.limits.slot(org):
                self.entered.append(name)
                self.inside += 1
                self.peak = max(self.peak, self.inside)
                try:
                    await gate.wait()
                finally:
                    self.inside -= 1

        task = self.tasks[name] = asyncio.create_task(hold(), name=f"hold-{name}")
        return task

    async def finish(self, name: str) -> None:
        self.gates[name].set()
        await self.tasks[name]

    async def finish_all(self) -> None:
        for gate in self.gates.values():
            gate.set()
        await asyncio.gather(*self.tasks.values())


def test_from_settings_reads_both_caps() -> None:
    limits = ModelLimits.from_settings(
        make_settings(
            "sqlite+aiosqlite:///unused.db",
            model_max_concurrency=7,
            model_max_concurrency_per_org=2,
        )
    )
    assert (limits.global_limit, limits.per_org_limit) == (7, 2)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ModelLimits(global_limit=0, per_org_limit=1)


async def test_a_flooding_org_does_not_starve_another() -> None:
    limits = ModelLimits(global_limit=3, per_org_limit=2)
    holder = Holder(limits)
    for i in range(6):
        holder.start(f"a{i}", ORG_A)
    await settle()
    assert holder.entered == ["a0", "a1"]
    holder.start("b0", ORG_B)
    await settle()
    assert holder.entered == ["a0", "a1", "b0"]
    assert limits.org_usage(ORG_A) == (2, 4)
    assert limits.org_usage(ORG_B) == (1, 0)
    snapshot = limits.snapshot()
    assert snapshot.global_in_use == 3
    assert snapshot.global_waiting == 0
    assert snapshot.org_waiting == 4
    assert snapshot.orgs_active == 2
    await holder.finish_all()
    assert holder.peak == 3


async def test_global_cap_holds_and_waiters_are_served_in_order() -> None:
    limits = ModelLimits(global_limit=2, per_org_limit=10)
    holder = Holder(limits)
    orgs = [uuid.uuid4() for _ in range(6)]
    for i, org in enumerate(orgs):
        holder.start(f"t{i}", org)
        await settle()
    assert holder.entered == ["t0", "t1"]
    assert limits.snapshot().global_waiting == 4
    await holder.finish("t0")
    await settle()
    # A newcomer arriving as a slot frees does not overtake the waiters.
    holder.start("late", uuid.uuid4())
    await holder.finish("t1")
    await settle()
    assert holder.entered == ["t0", "t1", "t2", "t3"]
    await holder.finish_all()
    assert holder.entered == ["t0", "t1", "t2", "t3", "t4", "t5", "late"]
    assert holder.peak == 2


async def test_cancelled_waiter_leaves_the_queue_and_holder_releases() -> None:
    limits = ModelLimits(global_limit=1, per_org_limit=1)
    holder = Holder(limits)
    holder.start("first", ORG_A)
    waiting = holder.start("second", ORG_A)
    holder.start("third", ORG_A)
    await settle()
    waiting.cancel()
    await settle()
    assert waiting.cancelled()
    assert limits.org_usage(ORG_A) == (1, 1)
    holding = holder.tasks["first"]
    holding.cancel()
    await settle()
    assert holder.entered == ["first", "third"]
    await holder.finish("third")
    assert limits.snapshot().as_dict() == {
        "global_limit": 1,
        "global_in_use": 0,
        "global_waiting": 0,
        "per_org_limit": 1,
        "orgs_active": 0,
        "org_slots_in_use": 0,
        "org_waiting": 0,
    }


async def test_slot_handed_to_a_waiter_cancelled_before_it_runs_is_passed_on() -> None:
    limits = ModelLimits(global_limit=1, per_org_limit=5)
    first = limits.global_slot()
    await first.__aenter__()
    holder = Holder(limits)
    second = holder.start("second", ORG_A)
    holder.start("third", ORG_B)
    await settle()
    await first.__aexit__(None, None, None)  # hands the slot to "second", which has not run
    second.cancel()
    await settle()
    assert second.cancelled()
    assert holder.entered == ["third"]
    await holder.finish("third")
    assert limits.snapshot().global_in_use == 0


async def test_idle_organizations_are_forgotten() -> None:
    limits = ModelLimits(global_limit=50, per_org_limit=1)

    async def use(org: uuid.UUID) -> None:
        async with limits.slot(org):
            await asyncio.sleep(0)

    await asyncio.gather(*(use(uuid.uuid4()) for _ in range(10_000)))
    snapshot = limits.snapshot()
    assert snapshot.orgs_active == 0
    assert snapshot.global_in_use == 0
    assert limits._orgs == {}
