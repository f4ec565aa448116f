"""Contract of the event-sourced repository through the dispatcher, on every backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from examples.ecommerce.domain import Order, OrderCreated, OrderSubmitted
from pymongo.errors import DuplicateKeyError

from cqrs_mongo.errors import ConcurrencyError, UnitOfWorkError
from cqrs_mongo.eventsourcing import EveryNEvents, InMemoryEventSourcedRepository
from cqrs_mongo.mongo import ensure_indexes
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.persistence import (
    InMemoryUnitOfWorkFactory,
    PersistenceDispatcher,
    PersistenceRegistry,
)

# The seed's model is the e-commerce example's (the spec's code, imports changed).


class MongoOrders(EventSourcedRepository[Order, str]):
    events_collection = "order_events"
    snapshots_collection = "order_snapshots"
    snapshot_strategy = EveryNEvents(2)


class InMemoryOrders(InMemoryEventSourcedRepository[Order, str]):
    snapshot_strategy = EveryNEvents(2)


def created(order_id: str) -> OrderCreated:
    return OrderCreated(order_id=order_id, customer_id="cust_456", total=Decimal("42.10"))


def submitted(order_id: str) -> OrderSubmitted:
    return OrderSubmitted(order_id=order_id, submitted_at=datetime(2024, 6, 1, tzinfo=UTC))


def new_order(order_id: str) -> Order:
    order = Order(id=order_id, customer_id="cust_456")
    order.add_event(created(order_id))
    return order


class EventSourcedRepositoryContract(ABC):
    supports_transactions: ClassVar[bool]

    @abstractmethod
    def create_factory(self) -> Any: ...

    @abstractmethod
    def create_dispatcher(self) -> PersistenceDispatcher: ...

    def create_read_only_unit(self) -> Any:
        unit = self.create_factory()()
        unit.read_only = True
        return unit

    async def load(self, *ids: str) -> list[Order]:
        return await self.create_dispatcher().fetch_domain(Order, list(ids))

    async def test_seed_flow_create_submit_reload(self) -> None:
        dispatcher = self.create_dispatcher()
        async with self.create_factory()() as uow:
            await dispatcher.apply(new_order("order_123"), uow=uow)
        async with self.create_factory()() as uow:
            [order] = await dispatcher.fetch_domain(Order, ["order_123"], uow=uow)
            order.add_event(submitted(order.id))
            await dispatcher.apply(order, uow=uow)

        [reloaded] = await self.load("order_123")

        assert (reloaded.status, reloaded.version) == ("submitted", 2)
        assert (reloaded.customer_id, reloaded.total) == ("cust_456", Decimal("42.10"))

    async def test_long_streams_reload_through_snapshots(self) -> None:
        order = new_order("o-1")
        for _ in range(6):
            order.add_event(submitted("o-1"))
        await self.create_dispatcher().apply(order)
        order.add_event(submitted("o-1"))
        await self.create_dispatcher().apply(order)

        [reloaded] = await self.load("o-1")

        assert (reloaded.status, reloaded.version, order.version) == ("submitted", 8, 8)

    async def test_explicit_events_are_persisted_with_pending_ones(self) -> None:
        order = new_order("o-1")

        await self.create_dispatcher().apply(order, events=[submitted("o-1")])

        [reloaded] = await self.load("o-1")
        assert (reloaded.status, reloaded.version) == ("submitted", 2)

    async def test_stale_writer_conflicts(self) -> None:
        await self.create_dispatcher().apply(new_order("o-1"))
        [first] = await self.load("o-1")
        [second] = await self.load("o-1")
        first.add_event(submitted("o-1"))
        await self.create_dispatcher().apply(first)
        second.add_event(submitted("o-1"))

        with pytest.raises(ConcurrencyError, match=r"Order 'o-1': expected version 1"):
            await self.create_dispatcher().apply(second)

    async def test_a_read_only_unit_refuses_to_persist(self) -> None:
        async with self.create_read_only_unit() as uow:
            with pytest.raises(UnitOfWorkError, match="read-only"):
                await self.create_dispatcher().apply(new_order("o-1"), uow=uow)

    @pytest.mark.requires_transactions
    async def test_rollback_leaves_nothing_and_restores_the_version(self) -> None:
        order = new_order("o-1")
        order.add_event(submitted("o-1"))

        with pytest.raises(RuntimeError):
            async with self.create_factory()() as uow:
                await self.create_dispatcher().apply(order, uow=uow)
                raise RuntimeError("boom")

        assert await self.load("o-1") == []
        assert (order.version, len(order.pending_events)) == (0, 2)


class TestInMemoryRepository(EventSourcedRepositoryContract):
    supports_transactions = True

    @pytest.fixture(autouse=True)
    def _bind(self) -> None:
        self.factory = InMemoryUnitOfWorkFactory(source="default")
        self.repository = InMemoryOrders()

    def create_factory(self) -> Any:
        return self.factory

    def create_dispatcher(self) -> PersistenceDispatcher:
        registry = PersistenceRegistry()
        registry.register_operation(Order, InMemoryOrders)
        registry.register_retrieval(Order, InMemoryOrders)
        return PersistenceDispatcher(
            uow_factories={"default": self.factory},
            registry=registry,
            handler_factory=lambda cls: self.repository,
        )


class MongoRepositoryContract(EventSourcedRepositoryContract):
    backend: Any

    def create_factory(self) -> Any:
        return self.backend.factory(source="default")

    def create_dispatcher(self) -> PersistenceDispatcher:
        registry = PersistenceRegistry()
        registry.register_operation(Order, MongoOrders)
        registry.register_retrieval(Order, MongoOrders)
        return PersistenceDispatcher(
            uow_factories={"default": self.create_factory()}, registry=registry
        )

    async def test_ensure_indexes_creates_the_unique_stream_index(self) -> None:
        created_names = await ensure_indexes(self.backend.database, [MongoOrders])

        assert created_names == {"order_events": ["stream_id_1_version_1"]}
        events = self.backend.database["order_events"]
        await events.insert_one({"stream_id": "s", "version": 1})
        with pytest.raises(DuplicateKeyError):
            await events.insert_one({"stream_id": "s", "version": 1})


class TestRepositoryOnMongomock(MongoRepositoryContract):
    supports_transactions = False

    @pytest.fixture(autouse=True)
    def _bind(self, mongomock_backend: Any) -> None:
        self.backend = mongomock_backend


class TestRepositoryOnEmbeddedServer(MongoRepositoryContract):
    supports_transactions = True

    @pytest.fixture(autouse=True)
    def _bind(self, embedded_backend: Any) -> None:
        self.backend = embedded_backend


class TestRepositoryOnMotor(MongoRepositoryContract):
    supports_transactions = True

    @pytest.fixture(autouse=True)
    def _bind(self, motor_backend: Any) -> None:
        self.backend = motor_backend
