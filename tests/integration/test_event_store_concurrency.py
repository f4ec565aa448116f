"""Twenty writers racing on one stream: distinct versions or ConcurrencyError, never a gap."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import Field

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import ConcurrencyError
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory

pytestmark = pytest.mark.requires_transactions

WRITERS = 20


class Opened(DomainEvent):
    pass


class Incremented(DomainEvent):
    writer: int


class Counter(AggregateRoot[str]):
    value: int = 0
    writers: list[int] = Field(default_factory=list)

    def apply_Opened(self, event: Opened) -> None:
        self.value = 0

    def apply_Incremented(self, event: Incremented) -> None:
        self.value += 1
        self.writers = [*self.writers, event.writer]


class CounterRepository(EventSourcedRepository[Counter, str]):
    pass


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, retry_budget_seconds=30)


async def open_counter(factory: MongoUnitOfWorkFactory) -> None:
    counter = Counter(id="c-1")
    counter.add_event(Opened())
    async with factory() as uow:
        await CounterRepository().persist(counter, uow)


async def increment(uow: MongoUnitOfWork, writer: int, barrier: asyncio.Barrier | None) -> int:
    repository = CounterRepository()
    [counter] = await repository.retrieve(["c-1"], uow)
    if barrier is not None:
        # Every writer has read the same version before any of them writes.
        await barrier.wait()
    counter.add_event(Incremented(writer=writer))
    await repository.persist(counter, uow)
    return counter.version


async def stored_versions(mongo_db: Any) -> list[int]:
    cursor = mongo_db["events"].find({"stream_id": "c-1"}).sort("version", 1)
    return [doc["version"] for doc in await cursor.to_list(None)]


async def test_racing_writers_land_at_distinct_versions_or_conflict(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await open_counter(factory)
    barrier = asyncio.Barrier(WRITERS)

    async def writer(n: int) -> int:
        async with factory() as uow:
            return await increment(uow, n, barrier)

    outcomes = await asyncio.gather(*(writer(n) for n in range(WRITERS)), return_exceptions=True)

    landed = [o for o in outcomes if isinstance(o, int)]
    failed = [o for o in outcomes if not isinstance(o, int)]
    assert landed, "no writer landed"
    assert all(isinstance(error, ConcurrencyError) for error in failed), failed
    assert len(set(landed)) == len(landed), "two writers reported the same version"
    versions = await stored_versions(mongo_db)
    assert versions == list(range(1, 2 + len(landed))), "gap or duplicate in the stream"
    for error in failed:
        assert isinstance(error, ConcurrencyError)
        assert (error.entity_type, error.entity_id, error.expected) == ("Counter", "c-1", 1)


async def test_the_unit_of_work_runner_makes_every_writer_land(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await open_counter(factory)

    outcomes = await asyncio.gather(
        *(factory.run(increment, n, None) for n in range(WRITERS)), return_exceptions=True
    )

    assert sorted(o for o in outcomes if isinstance(o, int)) == list(range(2, WRITERS + 2)), (
        outcomes
    )
    assert await stored_versions(mongo_db) == list(range(1, WRITERS + 2))
    async with factory(read_only=True) as uow:
        [counter] = await CounterRepository().retrieve(["c-1"], uow)
    assert (counter.value, counter.version) == (WRITERS, WRITERS + 1)
    assert sorted(counter.writers) == list(range(WRITERS))
