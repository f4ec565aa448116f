"""Contract of the event and snapshot stores, run in memory, on mongomock, embedded and Motor."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest
import pytest_asyncio
from pydantic import BaseModel

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.errors import ConcurrencyError
from cqrs_mongo.eventsourcing import (
    EventRegistry,
    EventStore,
    ExpectedVersion,
    InMemoryEventStore,
    InMemorySnapshotStore,
    Snapshot,
    SnapshotStore,
)
from cqrs_mongo.mongo.eventsourcing.event_store import MongoEventStore
from cqrs_mongo.mongo.eventsourcing.snapshot_store import MongoSnapshotStore
from cqrs_mongo.persistence import InMemoryUnitOfWorkFactory


class Currency(enum.Enum):
    EUR = "EUR"
    USD = "USD"


class Money(BaseModel):
    amount: Decimal
    currency: Currency


class Priced(DomainEvent):
    sku: str
    price: Money
    discounts: list[Decimal]
    valid_from: datetime
    batch: UUID
    tags: dict[str, int]


class Noted(DomainEvent):
    text: str


def note(text: str) -> Noted:
    return Noted(text=text)


class StoreContract(ABC):
    """What every event store and snapshot store must do."""

    supports_transactions: ClassVar[bool]

    @abstractmethod
    def create_event_store(self) -> EventStore: ...

    @abstractmethod
    def create_snapshot_store(self) -> SnapshotStore: ...

    @abstractmethod
    def create_unit(self) -> Any: ...

    async def append(self, stream_id: str, count: int, expected: Any) -> list[int]:
        async with self.create_unit() as uow:
            stored = await self.create_event_store().append(
                stream_id,
                [note(f"n{i}") for i in range(count)],
                expected,
                stream_type="Doc",
                uow=uow,
            )
        return [event.version for event in stored]

    # --- appending ----------------------------------------------------------------------

    async def test_new_stream_gets_versions_from_one(self) -> None:
        assert await self.append("s-1", 3, ExpectedVersion.NO_STREAM) == [1, 2, 3]
        assert await self.append("s-1", 2, 3) == [4, 5]

        stored = await self.create_event_store().read_stream("s-1")
        assert [(e.version, e.payload["text"]) for e in stored] == [
            (1, "n0"),
            (2, "n1"),
            (3, "n2"),
            (4, "n0"),
            (5, "n1"),
        ]
        assert {e.stream_type for e in stored} == {"Doc"}

    async def test_no_stream_on_an_existing_stream_conflicts(self) -> None:
        await self.append("s-1", 1, ExpectedVersion.NO_STREAM)

        with pytest.raises(ConcurrencyError, match="'s-1': expected no existing version") as info:
            await self.append("s-1", 1, ExpectedVersion.NO_STREAM)
        assert (info.value.expected, info.value.actual) == (None, 1)

    async def test_exact_version_conflicts_when_the_stream_moved_further_than_the_batch(
        self,
    ) -> None:
        await self.append("s-1", 6, 0)

        with pytest.raises(ConcurrencyError, match="expected version 2, found version 6"):
            await self.append("s-1", 1, 2)
        assert await self.create_event_store().stream_version("s-1") == 6

    async def test_a_conflicting_batch_writes_nothing(self) -> None:
        await self.append("s-1", 2, 0)

        with pytest.raises(ConcurrencyError):
            await self.append("s-1", 5, 1)

        assert [e.version for e in await self.create_event_store().read_stream("s-1")] == [1, 2]

    async def test_any_appends_after_whatever_is_there(self) -> None:
        assert await self.append("s-1", 1, ExpectedVersion.ANY) == [1]
        assert await self.append("s-1", 2, ExpectedVersion.ANY) == [2, 3]

    async def test_negative_expected_version_is_refused(self) -> None:
        with pytest.raises(ValueError, match="Expected version must be an int >= 0"):
            await self.append("s-1", 1, -1)

    # --- reading ------------------------------------------------------------------------

    async def test_read_stream_after_a_version(self) -> None:
        await self.append("s-1", 5, 0)

        stored = await self.create_event_store().read_stream("s-1", after_version=3)

        assert [e.version for e in stored] == [4, 5]
        assert await self.create_event_store().read_stream("missing") == []
        assert await self.create_event_store().stream_version("missing") == 0

    async def test_read_streams_in_one_call_with_per_stream_versions(self) -> None:
        await self.append("a", 3, 0)
        await self.append("b", 4, 0)
        await self.append("c", 2, 0)

        found = await self.create_event_store().read_streams({"a": 0, "b": 2, "c": 2, "zz": 0})

        assert {sid: [e.version for e in events] for sid, events in found.items()} == {
            "a": [1, 2, 3],
            "b": [3, 4],
        }

    async def test_payloads_round_trip_exactly(self) -> None:
        original = Priced(
            sku="tea",
            price=Money(amount=Decimal("12.3450"), currency=Currency.EUR),
            discounts=[Decimal("0.10"), Decimal("1E+2")],
            valid_from=datetime(2024, 2, 29, 23, 59, 59, 123000, tzinfo=UTC),
            batch=uuid4(),
            tags={"a": 1},
            correlation_id="corr",
            causation_id="cause",
        )
        async with self.create_unit() as uow:
            await self.create_event_store().append(
                "p-1", [original], 0, stream_type="Product", uow=uow
            )

        [stored] = await self.create_event_store().read_stream("p-1")
        loaded = EventRegistry([Priced]).to_event(stored)

        assert loaded == original.model_copy(update={"aggregate_id": "p-1"})
        assert isinstance(loaded, Priced)
        assert loaded.price.currency is Currency.EUR
        assert str(loaded.price.amount) == "12.3450"
        assert loaded.valid_from.tzinfo is not None

    async def test_every_store_keeps_payload_datetimes_at_millisecond_precision(self) -> None:
        original = Priced(
            sku="tea",
            price=Money(amount=Decimal("1"), currency=Currency.USD),
            discounts=[],
            valid_from=datetime(2024, 1, 1, 8, 30, 0, 987654, tzinfo=UTC),
            batch=uuid4(),
            tags={},
        )
        async with self.create_unit() as uow:
            await self.create_event_store().append("p-1", [original], 0, stream_type="P", uow=uow)

        [stored] = await self.create_event_store().read_stream("p-1")
        loaded = EventRegistry([Priced]).to_event(stored)

        assert isinstance(loaded, Priced)
        assert loaded.valid_from == datetime(2024, 1, 1, 8, 30, 0, 987000, tzinfo=UTC)

    @pytest.mark.requires_transactions
    async def test_a_rolled_back_unit_leaves_no_events_and_no_snapshot(self) -> None:
        with pytest.raises(RuntimeError):
            async with self.create_unit() as uow:
                await self.create_event_store().append(
                    "s-1", [note("x")], 0, stream_type="Doc", uow=uow
                )
                await self.create_snapshot_store().save(snapshot("s-1", 1), uow=uow)
                raise RuntimeError("handler failed")

        assert await self.create_event_store().read_stream("s-1") == []
        assert await self.create_snapshot_store().load_many(["s-1"]) == {}

    # --- snapshots ----------------------------------------------------------------------

    async def test_snapshots_load_many_and_newest_wins(self) -> None:
        store = self.create_snapshot_store()
        async with self.create_unit() as uow:
            assert await store.save(snapshot("a", 5), uow=uow) is True
            assert await store.save(snapshot("b", 2), uow=uow) is True
        async with self.create_unit() as uow:
            assert await store.save(snapshot("a", 9), uow=uow) is True

        loaded = await store.load_many(["a", "b", "missing"])

        assert {sid: s.version for sid, s in loaded.items()} == {"a": 9, "b": 2}
        assert loaded["a"].state == {"id": "a", "total": "9"}

    async def test_an_older_snapshot_never_overwrites_a_newer_one(self) -> None:
        store = self.create_snapshot_store()
        async with self.create_unit() as uow:
            await store.save(snapshot("a", 9), uow=uow)

        assert await store.save(snapshot("a", 4)) is False
        assert await store.save(snapshot("a", 9)) is False
        [kept] = (await store.load_many(["a"])).values()
        assert (kept.version, kept.state["total"]) == (9, "9")


def snapshot(stream_id: str, version: int) -> Snapshot:
    return Snapshot.of(stream_id, "Doc", version, 1, {"id": stream_id, "total": str(version)})


# --- backends ------------------------------------------------------------------------------


class TestStoresInMemory(StoreContract):
    supports_transactions = True

    @pytest.fixture(autouse=True)
    def _bind(self) -> None:
        self.events = InMemoryEventStore()
        self.snapshots = InMemorySnapshotStore()
        self.units = InMemoryUnitOfWorkFactory()

    def create_event_store(self) -> EventStore:
        return self.events

    def create_snapshot_store(self) -> SnapshotStore:
        return self.snapshots

    def create_unit(self) -> Any:
        return self.units()


class MongoStores(StoreContract):
    backend: Any

    def create_event_store(self) -> EventStore:
        return MongoEventStore(self.backend.database)

    def create_snapshot_store(self) -> SnapshotStore:
        return MongoSnapshotStore(self.backend.database)

    def create_unit(self) -> Any:
        return self.backend.factory()()


class TestStoresOnMongomock(MongoStores):
    supports_transactions = False

    @pytest_asyncio.fixture(autouse=True)
    async def _bind(self, mongomock_backend: Any) -> None:
        self.backend = mongomock_backend
        await MongoEventStore(self.backend.database).ensure_indexes()


class TestStoresOnEmbeddedServer(MongoStores):
    supports_transactions = True

    @pytest_asyncio.fixture(autouse=True)
    async def _bind(self, embedded_backend: Any) -> None:
        self.backend = embedded_backend
        await MongoEventStore(self.backend.database).ensure_indexes()


class TestStoresOnMotor(MongoStores):
    supports_transactions = True

    @pytest_asyncio.fixture(autouse=True)
    async def _bind(self, motor_backend: Any) -> None:
        self.backend = motor_backend
        await MongoEventStore(self.backend.database).ensure_indexes()
