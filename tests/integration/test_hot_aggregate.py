"""Many tasks load-modify-append one event-sourced aggregate through factory.run: all land."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cqrs_mongo import AggregateRoot, DomainEvent, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.mongo import EventSourcedRepository, MongoUnitOfWork, MongoUnitOfWorkFactory

pytestmark = pytest.mark.requires_transactions


class Bumped(DomainEvent):
    by: int


class Hot(AggregateRoot[str]):
    value: int = 0

    def apply_Bumped(self, event: Bumped) -> None:
        self.value += event.by


class HotRepository(EventSourcedRepository[Hot, str]): ...


async def seeded(factory: MongoUnitOfWorkFactory, key: str) -> PersistenceDispatcher:
    """A dispatcher over ``factory`` and a stored ``Hot`` aggregate ``key`` at version 1."""
    registry = PersistenceRegistry()
    registry.register_operation(Hot, HotRepository)
    registry.register_retrieval(Hot, HotRepository)
    dispatcher = PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)
    seed = Hot(id=key)
    seed.add_event(Bumped(by=0))
    await dispatcher.apply(seed)
    return dispatcher


async def test_contending_tasks_all_land_and_take_turns_after_a_conflict(
    mongo_client: Any, mongo_db: Any
) -> None:
    factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name, retry_budget_seconds=120)
    dispatcher = await seeded(factory, "hot")
    attempts = 0
    queued_peak = 0

    async def bump(uow: MongoUnitOfWork) -> None:
        nonlocal attempts, queued_peak
        attempts += 1
        queued_peak = max(queued_peak, len(factory.conflicts))
        [hot] = await dispatcher.fetch_domain(Hot, ["hot"], uow=uow)
        hot.add_event(Bumped(by=1))
        await asyncio.sleep(0)  # let the others interleave
        await dispatcher.apply(hot, uow=uow)

    async def task() -> None:
        for _ in range(3):
            await factory.run(bump)

    await asyncio.gather(*(task() for _ in range(12)))

    [hot] = await dispatcher.fetch_domain(Hot, ["hot"])
    assert hot.value == 36
    assert hot.version == 37
    assert attempts > 36, "the tasks never collided: the test proves nothing"
    assert queued_peak >= 1, "no retry queued for the aggregate it lost a conflict on"
    assert len(factory.conflicts) == 0


async def test_the_transaction_loop_queues_after_a_conflict_too(
    mongo_client: Any, mongo_db: Any
) -> None:
    factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name, retry_budget_seconds=120)
    dispatcher = await seeded(factory, "hot-loop")
    attempts = 0
    queued_peak = 0

    async def task() -> None:
        nonlocal attempts, queued_peak
        for _ in range(3):
            async for attempt in factory.transaction():
                async with attempt as uow:
                    attempts += 1
                    queued_peak = max(queued_peak, len(factory.conflicts))
                    [hot] = await dispatcher.fetch_domain(Hot, ["hot-loop"], uow=uow)
                    hot.add_event(Bumped(by=1))
                    await asyncio.sleep(0)
                    await dispatcher.apply(hot, uow=uow)

    await asyncio.gather(*(task() for _ in range(12)))

    [hot] = await dispatcher.fetch_domain(Hot, ["hot-loop"])
    assert hot.value == 36
    assert attempts > 36, "the tasks never collided: the test proves nothing"
    assert queued_peak >= 1, "no retry queued for the aggregate it lost a conflict on"
    assert len(factory.conflicts) == 0, "a turn was kept after the loop ended"
