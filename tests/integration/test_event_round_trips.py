"""Round trips: one insert per apply whatever the event count; constant queries per load."""

from __future__ import annotations

from typing import Any

import pytest

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.eventsourcing import EveryNEvents
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory
from cqrs_mongo.persistence import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.testing import CommandCounter

pytestmark = pytest.mark.requires_transactions


class Tallied(DomainEvent):
    amount: int


class Tally(AggregateRoot[str]):
    total: int = 0

    def apply_Tallied(self, event: Tallied) -> None:
        self.total += event.amount


class TallyRepository(EventSourcedRepository[Tally, str]):
    pass


class SnapshottedTallyRepository(EventSourcedRepository[Tally, str]):
    snapshot_strategy = EveryNEvents(2)


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, source="default")


def dispatcher_for(factory: MongoUnitOfWorkFactory, repository: type[Any]) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Tally, repository)
    registry.register_retrieval(Tally, repository)
    return PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)


def tally(tally_id: str, events: int) -> Tally:
    aggregate = Tally(id=tally_id)
    for _ in range(events):
        aggregate.add_event(Tallied(amount=1))
    return aggregate


async def seed(factory: MongoUnitOfWorkFactory, repository: Any, count: int, events: int) -> None:
    async with factory() as uow:
        for n in range(count):
            await repository.persist(tally(f"t-{n:03}", events), uow)


@pytest.mark.parametrize("events", [1, 50])
async def test_apply_sends_one_insert_whatever_the_number_of_events(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter, events: int
) -> None:
    dispatcher = dispatcher_for(factory, TallyRepository)
    await dispatcher.apply(tally("warm-up", 1))  # creates the unique index once
    aggregate = tally("t-1", events)

    with command_counter.measure() as counts:
        async with factory() as uow:
            await dispatcher.apply(aggregate, uow=uow)

    # One event is one document, sent alone at commit; more are one insert in a transaction.
    commit = {} if events == 1 else {"commitTransaction": 1}
    assert dict(counts) == {"insert": 1, **commit}
    assert aggregate.version == events


async def test_apply_with_a_snapshot_adds_one_update(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    dispatcher = dispatcher_for(factory, SnapshottedTallyRepository)
    await dispatcher.apply(tally("warm-up", 1))

    async with factory() as uow:
        with command_counter.measure() as counts:
            await dispatcher.apply(tally("t-1", 50), uow=uow)
        measured = dict(counts)

    assert measured == {"insert": 1, "update": 1}


async def load_counts(
    factory: MongoUnitOfWorkFactory, counter: CommandCounter, repository: Any, n: int
) -> tuple[dict[str, int], list[Tally]]:
    dispatcher = dispatcher_for(factory, type(repository))
    ids = [f"t-{i:03}" for i in range(n)]
    async with factory(read_only=True) as uow:
        with counter.measure() as counts:
            loaded = await dispatcher.fetch_domain(Tally, ids, uow=uow)
        return dict(counts), loaded


async def test_loading_100_aggregates_is_one_query_without_snapshots(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    repository = TallyRepository()
    await seed(factory, repository, 100, 3)

    ten, _ = await load_counts(factory, command_counter, repository, 10)
    hundred, loaded = await load_counts(factory, command_counter, repository, 100)

    assert ten == hundred == {"find": 1}
    assert [t.id for t in loaded] == [f"t-{i:03}" for i in range(100)]
    assert {(t.total, t.version) for t in loaded} == {(3, 3)}


async def test_loading_100_aggregates_is_two_queries_with_snapshots(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter, mongo_db: Any
) -> None:
    repository = SnapshottedTallyRepository()
    await seed(factory, repository, 100, 3)
    # Half of the streams lose their snapshot, so the event query mixes both kinds of stream.
    await mongo_db["snapshots"].delete_many({"_id": {"$gte": "t-050"}})
    assert await mongo_db["snapshots"].count_documents({}) == 50

    ten, _ = await load_counts(factory, command_counter, repository, 10)
    hundred, loaded = await load_counts(factory, command_counter, repository, 100)

    assert ten == hundred == {"find": 2}
    assert {(t.total, t.version) for t in loaded} == {(3, 3)}
