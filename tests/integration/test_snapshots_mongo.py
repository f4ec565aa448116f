"""Snapshots on MongoDB: same unit as the events, newest wins, wrong shapes ignored."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import ConcurrencyError
from cqrs_mongo.eventsourcing import EveryNEvents, Snapshot
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.eventsourcing.snapshot_store import MongoSnapshotStore
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory

pytestmark = pytest.mark.requires_transactions


class Level(enum.Enum):
    LOW = "low"
    HIGH = "high"


class Measured(DomainEvent):
    value: Decimal
    at: datetime
    probe: UUID


class Tank(AggregateRoot[str]):
    level: Decimal = Decimal("0")
    readings: int = 0
    last_at: datetime | None = None
    alarm: Level = Level.LOW
    probe: UUID | None = None

    def apply_Measured(self, event: Measured) -> None:
        self.level = event.value
        self.readings += 1
        self.last_at = event.at
        self.probe = event.probe
        self.alarm = Level.HIGH if event.value > 100 else Level.LOW


class TankRepository(EventSourcedRepository[Tank, str]):
    snapshot_strategy = EveryNEvents(3)


class ReplayingTankRepository(EventSourcedRepository[Tank, str]):
    """The same streams, never using snapshots: the reference a snapshot load must match."""


def measured(value: str, n: int = 0) -> Measured:
    return Measured(
        value=Decimal(value),
        at=datetime(2024, 3, 1, 12, 0, 0, 123000 + 1000 * n, tzinfo=UTC),
        probe=uuid4(),
    )


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name)


async def write_tank(factory: MongoUnitOfWorkFactory, readings: int, tank_id: str = "t-1") -> Tank:
    tank = Tank(id=tank_id)
    for n in range(readings):
        tank.add_event(measured(str(10 * (n + 1)), n))
    async with factory() as uow:
        await TankRepository().persist(tank, uow)
    return tank


async def load(factory: MongoUnitOfWorkFactory, repository: Any, tank_id: str = "t-1") -> Tank:
    async with factory(read_only=True) as uow:
        [tank] = await repository.retrieve([tank_id], uow)
    return tank


async def test_snapshot_is_written_with_the_events(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await write_tank(factory, 4)

    document = await mongo_db["snapshots"].find_one({"_id": "t-1"})
    assert document is not None
    assert (document["version"], document["schema_version"], document["stream_type"]) == (
        4,
        1,
        "Tank",
    )
    assert document["state"]["readings"] == 4


async def test_a_snapshot_load_equals_a_full_replay(factory: MongoUnitOfWorkFactory) -> None:
    tank = await write_tank(factory, 3)
    tank.add_event(measured("120.5", 7))
    async with factory() as uow:
        await TankRepository().persist(tank, uow)

    from_snapshot = await load(factory, TankRepository())
    replayed = await load(factory, ReplayingTankRepository())

    assert from_snapshot.model_dump() == replayed.model_dump()
    assert (from_snapshot.version, from_snapshot.alarm, from_snapshot.level) == (
        4,
        Level.HIGH,
        Decimal("120.5"),
    )
    assert from_snapshot.last_at == datetime(2024, 3, 1, 12, 0, 0, 130000, tzinfo=UTC)


async def test_load_uses_the_newest_snapshot_plus_the_events_after_it(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    tank = await write_tank(factory, 3)
    tank.add_event(measured("1", 9))
    async with factory() as uow:
        await TankRepository().persist(tank, uow)
    # Mark the snapshot so the load can be told apart from a replay of all four events.
    await mongo_db["snapshots"].update_one({"_id": "t-1"}, {"$set": {"state.readings": 1000}})

    loaded = await load(factory, TankRepository())

    assert (loaded.readings, loaded.version, loaded.level) == (1001, 4, Decimal("1"))


async def test_a_snapshot_of_another_schema_version_is_ignored(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await write_tank(factory, 3)
    await mongo_db["snapshots"].update_one({"_id": "t-1"}, {"$set": {"state.readings": 1000}})

    class TankRepositoryV2(TankRepository):
        snapshot_schema_version: ClassVar[int] = 2

    loaded = await load(factory, TankRepositoryV2())

    assert (loaded.readings, loaded.version) == (3, 3)


async def test_an_unreadable_snapshot_falls_back_to_a_replay(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await write_tank(factory, 3)
    await mongo_db["snapshots"].update_one(
        {"_id": "t-1"}, {"$set": {"state.level": "not a number"}}
    )

    loaded = await load(factory, TankRepository())

    assert (loaded.level, loaded.version) == (Decimal("30"), 3)


async def test_a_failing_unit_leaves_no_events_and_no_snapshot(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    tank = Tank(id="t-1")
    for n in range(5):
        tank.add_event(measured("1", n))

    with pytest.raises(RuntimeError):
        async with factory() as uow:
            await TankRepository().persist(tank, uow)
            raise RuntimeError("the handler failed after writing")

    assert await mongo_db["events"].count_documents({}) == 0
    assert await mongo_db["snapshots"].count_documents({}) == 0
    assert (tank.version, len(tank.pending_events)) == (0, 5)


async def test_an_older_snapshot_never_overwrites_a_newer_one(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await write_tank(factory, 6)
    store = MongoSnapshotStore(mongo_db)
    older = Snapshot.of("t-1", "Tank", 3, 1, {"id": "t-1", "readings": 3})

    assert await store.save(older) is False
    # Inside a transaction the failed upsert has aborted the transaction: it cannot be ignored.
    with pytest.raises(ConcurrencyError, match="'t-1': expected version 3, found version 6"):
        async with factory() as uow:
            await store.save(older, uow=uow)

    kept = await mongo_db["snapshots"].find_one({"_id": "t-1"})
    assert (kept["version"], kept["state"]["readings"]) == (6, 6)
