"""Loading on MongoDB: documents decoded straight into events rebuild what StoredEvents rebuild."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pymongo import monitoring

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import EventDecodingError
from cqrs_mongo.eventsourcing import EveryNEvents, StoredEvent
from cqrs_mongo.eventsourcing.repository import EventSourcedRepositoryBase
from cqrs_mongo.mongo.driver import create_client
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.eventsourcing.event_store import MongoEventStore
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory

pytestmark = pytest.mark.requires_transactions


class Deposited(DomainEvent):
    amount: Decimal
    at: datetime


class Renamed(DomainEvent):
    name: str


class Account(AggregateRoot[str]):
    name: str = ""
    balance: Decimal = Decimal("0")
    last_at: datetime | None = None

    def apply_Deposited(self, event: Deposited) -> None:
        self.balance += event.amount
        self.last_at = event.at

    def apply_Renamed(self, event: Renamed) -> None:
        self.name = event.name


class Accounts(EventSourcedRepository[Account, str]):
    events_collection = "account_events"


class SnapshottedAccounts(EventSourcedRepository[Account, str]):
    events_collection = "account_events"
    snapshots_collection = "account_snapshots"
    snapshot_strategy = EveryNEvents(4)


class CountingStore(MongoEventStore):
    """A store whose read_streams a subclass changed: loads must go through it."""

    reads = 0

    async def read_streams(
        self, after_versions: Mapping[Any, int], *, uow: Any = None
    ) -> dict[Any, list[StoredEvent]]:
        CountingStore.reads += 1
        return await super().read_streams(after_versions, uow=uow)


class CountingAccounts(Accounts):
    def event_store(self, uow: Any) -> MongoEventStore:
        return CountingStore(uow.database, self.events_collection)


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name)


def account(account_id: str, deposits: int) -> Account:
    built = Account(id=account_id)
    built.add_event(Renamed(name=f"holder of {account_id}"))
    for n in range(deposits):
        at = datetime(2024, 1, 1, 12, 0, n, 123456, tzinfo=UTC)
        built.add_event(Deposited(amount=Decimal(n) + Decimal("0.25"), at=at))
    return built


async def stored_event_path(repository: Any, ids: list[str], uow: Any) -> list[Account]:
    """What the storage-agnostic base rebuilds, through read_streams and StoredEvent."""
    registry = repository.events
    source = await EventSourcedRepositoryBase._replay_source(
        repository, dict.fromkeys(ids, 0), registry, uow
    )
    rebuilt = []
    for sid in ids:
        aggregate = Account.blank(sid)
        for event in source.streams.get(sid, []):
            aggregate.apply_event(source.decode(event))
            aggregate.version = source.version_of(event)
        rebuilt.append(aggregate)
    return rebuilt


async def test_loads_rebuild_what_stored_events_rebuild(factory: MongoUnitOfWorkFactory) -> None:
    written = [account("a-1", 3), account("a-2", 0), account("a-3", 7)]
    async with factory() as uow:
        for aggregate in written:
            await Accounts().persist(aggregate, uow)
    ids = ["a-3", "a-1", "a-2"]
    async with factory(read_only=True) as uow:
        loaded = await Accounts().retrieve(ids, uow)
        reference = await stored_event_path(Accounts(), ids, uow)
    assert [a.model_dump() for a in loaded] == [a.model_dump() for a in reference]
    assert [(a.id, a.version) for a in loaded] == [("a-3", 8), ("a-1", 4), ("a-2", 1)]
    assert loaded[0].last_at == datetime(2024, 1, 1, 12, 0, 6, 123000, tzinfo=UTC)


async def test_a_snapshot_and_the_events_after_it_rebuild_the_whole_stream(
    factory: MongoUnitOfWorkFactory,
) -> None:
    async with factory() as uow:
        await SnapshottedAccounts().persist(account("s-1", 5), uow)  # snapshot at version 6
    more = (await _load(factory, SnapshottedAccounts(), "s-1"))[0]
    more.add_event(Deposited(amount=Decimal("1"), at=datetime(2024, 2, 1, tzinfo=UTC)))
    async with factory() as uow:
        await SnapshottedAccounts().persist(more, uow)
    from_snapshot = await _load(factory, SnapshottedAccounts(), "s-1")
    from_events = await _load(factory, Accounts(), "s-1")
    assert from_snapshot[0].model_dump() == from_events[0].model_dump()
    assert from_snapshot[0].version == 7


async def test_a_store_whose_read_streams_is_overridden_is_read_through_it(
    factory: MongoUnitOfWorkFactory,
) -> None:
    async with factory() as uow:
        await Accounts().persist(account("c-1", 2), uow)
    before = CountingStore.reads
    loaded = await _load(factory, CountingAccounts(), "c-1")
    assert CountingStore.reads == before + 1
    assert loaded[0].balance == Decimal("1.50")


async def test_an_invalid_payload_in_a_stream_is_named_with_its_event_and_field(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    async with factory() as uow:
        await Accounts().persist(account("b-1", 3), uow)
    await mongo_db["account_events"].update_one(
        {"stream_id": "b-1", "version": 3}, {"$set": {"payload.amount": "lots"}}
    )
    with pytest.raises(EventDecodingError) as caught:
        await _load(factory, Accounts(), "b-1")
    error = caught.value
    assert (error.stream_type, error.stream_id, error.version, error.field) == (
        "Account",
        "b-1",
        3,
        "payload.amount",
    )
    assert "Deposited does not validate" in str(error)


async def _load(factory: MongoUnitOfWorkFactory, repository: Any, sid: str) -> list[Account]:
    async with factory(read_only=True) as uow:
        loaded: list[Account] = await repository.retrieve([sid], uow)
    return loaded


class Sorts(monitoring.CommandListener):
    def __init__(self) -> None:
        self.sorts: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "account_events":
            self.sorts.append(dict(event.command.get("sort", {})))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_one_stream_is_sorted_by_version_alone_and_many_by_stream_then_version(
    mongo_server: Any, mongo_db: Any, factory: MongoUnitOfWorkFactory
) -> None:
    sorts = Sorts()
    client = create_client(mongo_server.uri, event_listeners=[sorts])
    try:
        watched = MongoUnitOfWorkFactory(client, mongo_db.name)
        async with watched() as uow:
            await Accounts().persist(account("o-1", 2), uow)
            await Accounts().persist(account("o-2", 1), uow)
        async with watched(read_only=True) as uow:
            [one] = await Accounts().retrieve(["o-1"], uow)
            many = await Accounts().retrieve(["o-2", "o-1"], uow)
            [stored] = (
                await Accounts().event_store(uow).read_streams({"o-1": 0}, uow=uow)
            ).values()
    finally:
        await client.close()
    assert sorts.sorts == [{"version": 1}, {"stream_id": 1, "version": 1}, {"version": 1}]
    alone = await _load(factory, Accounts(), "o-2")
    assert [a.model_dump() for a in many] == [alone[0].model_dump(), one.model_dump()]
    assert [e.version for e in stored] == [1, 2, 3]
