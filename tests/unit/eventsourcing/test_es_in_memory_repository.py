"""The event-sourced repository on in-memory stores: the seed's order flow, versions, snapshots."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from examples.ecommerce.domain import Order, OrderCreated, OrderSubmitted

from cqrs_mongo.domain import AggregateRoot
from cqrs_mongo.errors import ConcurrencyError, ConfigurationError
from cqrs_mongo.eventsourcing import (
    EveryNEvents,
    InMemoryEventSourcedRepository,
    InMemoryEventStore,
    InMemorySnapshotStore,
    Snapshot,
    shared_event_store,
    shared_snapshot_store,
)
from cqrs_mongo.persistence import (
    InMemoryUnitOfWorkFactory,
    PersistenceDispatcher,
    PersistenceRegistry,
)

# The seed's model is the e-commerce example's (the spec's code, imports changed).


class OrderRepository(InMemoryEventSourcedRepository[Order, str]):
    pass


def created(order_id: str, total: str = "10.00") -> OrderCreated:
    return OrderCreated(order_id=order_id, customer_id="cust-1", total=Decimal(total))


def submitted(order_id: str) -> OrderSubmitted:
    return OrderSubmitted(order_id=order_id, submitted_at=datetime(2024, 1, 2, tzinfo=UTC))


def new_order(order_id: str) -> Order:
    order = Order(id=order_id, customer_id="cust-1")
    order.add_event(created(order_id))
    return order


@pytest.fixture
def uow_factory() -> InMemoryUnitOfWorkFactory:
    return InMemoryUnitOfWorkFactory()


@pytest.fixture
def repository() -> OrderRepository:
    return OrderRepository()


async def test_seed_order_flow_through_the_dispatcher(
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="default")
    registry.register_retrieval(Order, OrderRepository, source="default")
    dispatcher = PersistenceDispatcher(uow_factories={"default": uow_factory}, registry=registry)

    async with uow_factory() as uow:
        await dispatcher.apply(new_order("order_123"), uow=uow)
    async with uow_factory() as uow:
        [order] = await dispatcher.fetch_domain(Order, ["order_123"], uow=uow)
        order.add_event(submitted(order.id))
        await dispatcher.apply(order, uow=uow)
    [reloaded] = await dispatcher.fetch_domain(Order, ["order_123"])

    assert (reloaded.status, reloaded.version, reloaded.total) == ("submitted", 2, Decimal("10.00"))


async def test_commit_moves_version_and_clears_pending_events(
    repository: OrderRepository, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    order = new_order("o-1")

    async with uow_factory() as uow:
        assert await repository.persist(order, uow) == "o-1"
        assert order.version == 1
        assert len(order.pending_events) == 1, "pending events cleared before commit"

    assert order.pending_events == ()


async def test_rollback_restores_version_keeps_events_and_stores_nothing(
    repository: OrderRepository, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    order = new_order("o-1")

    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            await repository.persist(order, uow)
            raise RuntimeError("handler failed after the write")

    assert order.version == 0
    assert len(order.pending_events) == 1
    async with uow_factory() as uow:
        assert await repository.retrieve(["o-1"], uow) == []


async def test_persisting_twice_in_one_unit_appends_each_event_once(
    repository: OrderRepository, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    order = new_order("o-1")

    async with uow_factory() as uow:
        await repository.persist(order, uow)
        order.add_event(submitted("o-1"))
        await repository.persist(order, uow)

    assert order.version == 2
    stored = await shared_event_store(uow_factory).read_stream("o-1")
    assert [e.event_type for e in stored] == ["OrderCreated", "OrderSubmitted"]


class SlottedUnit:
    """A unit of work of a user's that takes no attributes of its own (``__slots__``)."""

    __slots__ = ("__weakref__", "_inner")

    def __init__(self, inner: Any) -> None:
        object.__setattr__(self, "_inner", inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def test_persisting_twice_in_a_unit_that_takes_no_attributes_appends_each_event_once(
    repository: OrderRepository, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    order = new_order("o-1")

    async with uow_factory() as inner:
        uow = SlottedUnit(inner)
        await repository.persist(order, uow)
        order.add_event(submitted("o-1"))
        await repository.persist(order, uow)

    assert order.version == 2
    assert order.pending_events == ()
    stored = await shared_event_store(uow_factory).read_stream("o-1")
    assert [e.event_type for e in stored] == ["OrderCreated", "OrderSubmitted"]


async def test_rollback_after_two_writes_restores_the_original_version(
    repository: OrderRepository, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    order = new_order("o-1")

    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            await repository.persist(order, uow)
            order.add_event(submitted("o-1"))
            await repository.persist(order, uow)
            raise RuntimeError("boom")

    assert order.version == 0
    assert len(order.pending_events) == 2


async def test_explicit_events_are_applied_and_appended_once(
    repository: OrderRepository, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    order = new_order("o-1")
    extra = submitted("o-1")

    async with uow_factory() as uow:
        await repository.persist(order, uow, events=[extra, *order.pending_events])

    assert (order.status, order.version) == ("submitted", 2)
    async with uow_factory() as uow:
        [reloaded] = await repository.retrieve(["o-1"], uow)
    assert (reloaded.status, reloaded.version) == ("submitted", 2)


async def test_a_stale_aggregate_conflicts(
    repository: OrderRepository, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    async with uow_factory() as uow:
        await repository.persist(new_order("o-1"), uow)
    async with uow_factory() as uow:
        [first] = await repository.retrieve(["o-1"], uow)
        [second] = await repository.retrieve(["o-1"], uow)
    first.add_event(submitted("o-1"))
    second.add_event(submitted("o-1"))
    async with uow_factory() as uow:
        await repository.persist(first, uow)

    with pytest.raises(ConcurrencyError, match=r"Order 'o-1': expected version 1, found version 2"):
        async with uow_factory() as uow:
            await repository.persist(second, uow)


async def test_retrieve_keeps_the_order_asked_and_skips_missing(
    repository: OrderRepository, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    async with uow_factory() as uow:
        for order_id in ("a", "b", "c"):
            await repository.persist(new_order(order_id), uow)

    async with uow_factory() as uow:
        found = await repository.retrieve(["c", "missing", "a", "b", "a"], uow)

    assert [order.id for order in found] == ["c", "a", "b"]


async def test_wrong_aggregate_type_is_refused(
    repository: OrderRepository, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    class Other(AggregateRoot[str]):
        pass

    async with uow_factory() as uow:
        with pytest.raises(ConfigurationError, match=r"stores Order, not .*Other\."):
            await repository.persist(Other(id="x"), uow)  # type: ignore[arg-type]


def test_a_repository_without_aggregate_type_is_a_configuration_error() -> None:
    class Unconfigured(InMemoryEventSourcedRepository[Any, str]):
        pass

    with pytest.raises(ConfigurationError, match="names no aggregate type"):
        Unconfigured()


class SnapshottingOrders(InMemoryEventSourcedRepository[Order, str]):
    snapshot_strategy = EveryNEvents(2)


async def long_order(repository: Any, uow_factory: InMemoryUnitOfWorkFactory, n: int) -> Order:
    order = new_order("o-1")
    for _ in range(n - 1):
        order.add_event(submitted("o-1"))
    async with uow_factory() as uow:
        await repository.persist(order, uow)
    return order


def tampered(snapshot: Snapshot) -> Snapshot:
    """The snapshot with a marker in its state, so a test can tell it was used."""
    return replace(snapshot, state={**snapshot.state, "customer_id": "from-snapshot"})


async def test_load_uses_the_snapshot_plus_the_events_after_it(
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    snapshots = InMemorySnapshotStore()
    repository = SnapshottingOrders(snapshot_store=snapshots)
    order = await long_order(repository, uow_factory, 2)
    assert snapshots.snapshots["o-1"].version == 2
    snapshots.snapshots["o-1"] = tampered(snapshots.snapshots["o-1"])
    order.add_event(submitted("o-1"))
    async with uow_factory() as uow:
        await repository.persist(order, uow)
    assert snapshots.snapshots["o-1"].version == 2, "3 crosses no multiple of 2"

    async with uow_factory() as uow:
        [reloaded] = await repository.retrieve(["o-1"], uow)

    assert (reloaded.customer_id, reloaded.version, reloaded.status) == (
        "from-snapshot",
        3,
        "submitted",
    )


async def test_a_snapshot_of_another_schema_version_is_ignored(
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    snapshots = InMemorySnapshotStore()
    events = InMemoryEventStore()
    await long_order(SnapshottingOrders(events, snapshots), uow_factory, 2)
    snapshots.snapshots["o-1"] = tampered(snapshots.snapshots["o-1"])

    class OrdersWithNewSnapshotShape(SnapshottingOrders):
        snapshot_schema_version: ClassVar[int] = 2

    async with uow_factory() as uow:
        [reloaded] = await OrdersWithNewSnapshotShape(events, snapshots).retrieve(["o-1"], uow)

    assert (reloaded.customer_id, reloaded.version) == ("cust-1", 2)


async def test_an_older_snapshot_never_replaces_a_newer_one() -> None:
    snapshots = InMemorySnapshotStore()
    newer = Snapshot.of("o-1", "Order", 10, 1, {"id": "o-1"})

    assert await snapshots.save(newer) is True
    assert await snapshots.save(replace(newer, version=8)) is False
    assert snapshots.snapshots["o-1"].version == 10


async def test_rollback_leaves_no_events_and_no_snapshot(
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    repository = SnapshottingOrders()

    with pytest.raises(RuntimeError):
        async with uow_factory() as uow:
            order = new_order("o-1")
            order.add_event(submitted("o-1"))
            await repository.persist(order, uow)
            raise RuntimeError("boom")

    assert shared_event_store(uow_factory).streams == {}
    assert shared_snapshot_store(uow_factory).snapshots == {}


class VersionedOrder(Order):
    snapshot_schema_version: ClassVar[int] = 7


class VersionedOrders(InMemoryEventSourcedRepository[VersionedOrder, str]):
    snapshot_strategy = EveryNEvents(1)


async def test_the_aggregates_snapshot_schema_version_wins(
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    repository = VersionedOrders()
    order = VersionedOrder(id="o-1", customer_id="cust-1")
    order.add_event(created("o-1"))

    async with uow_factory() as uow:
        await repository.persist(order, uow)

    assert shared_snapshot_store(uow_factory).snapshots["o-1"].schema_version == 7


async def test_without_a_unit_of_work_pending_events_clear_at_once(
    repository: OrderRepository,
) -> None:
    order = new_order("o-1")

    await repository.persist(order, None)

    assert (order.version, order.pending_events) == (1, ())
    [reloaded] = await repository.retrieve(["o-1"], None)
    assert reloaded.status == "created"
