"""The product spec's registration, dispatch, specification and SearchResult examples.

Each block follows the seed's code with only its imports changed, against the in-memory
adapters (``InMemoryUnitOfWorkFactory``) so it runs without a database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from seed_order_model import (
    Order,
    OrderCreated,
    OrderRepository,
    OrderSubmitted,
    OrderSummaryDTO,
    OrderSummaryQuery,
    OrderSummarySpecQuery,
)

from cqrs_mongo import (
    InMemoryStore,
    InMemoryUnitOfWorkFactory,
    PersistenceDispatcher,
    PersistenceRegistry,
    QueryOptions,
    SourceMismatchError,
    SpecificationBuilder,
    UnitOfWork,
)


class OrderNotFound(Exception):
    pass


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def uow_factory(store: InMemoryStore) -> InMemoryUnitOfWorkFactory:
    return InMemoryUnitOfWorkFactory(store)


@pytest.fixture
def read_replica_uow_factory(store: InMemoryStore) -> InMemoryUnitOfWorkFactory:
    # The read side's own factory (over the same store, as a replica would hold the same data):
    # a query of a "read_replica" type runs in a unit of that factory, not of "default".
    return InMemoryUnitOfWorkFactory(store)


@pytest.fixture
def dispatcher(
    uow_factory: InMemoryUnitOfWorkFactory, read_replica_uow_factory: InMemoryUnitOfWorkFactory
) -> PersistenceDispatcher:
    # The seed's "Setup" and "PersistenceRegistry" blocks.
    registry = PersistenceRegistry()
    registry.register_operation(
        entity_type=Order, handler_cls=OrderRepository, source="default", priority=0
    )
    registry.register_retrieval(entity_type=Order, handler_cls=OrderRepository, source="default")
    registry.register_query(
        result_type=OrderSummaryDTO, handler_cls=OrderSummaryQuery, source="read_replica"
    )
    registry.register_query_spec(
        result_type=OrderSummaryDTO, handler_cls=OrderSummarySpecQuery, source="read_replica"
    )
    return PersistenceDispatcher(
        uow_factories={"default": uow_factory, "read_replica": read_replica_uow_factory},
        registry=registry,
        handler_factory=lambda cls: cls(),
    )


async def seed_summaries(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        ("order_1", "cust_123", "submitted", 0),
        ("order_2", "cust_123", "submitted", 1),
        ("order_3", "cust_123", "created", 2),
        ("order_4", "cust_999", "submitted", 3),
        ("order_5", "cust_123", "submitted", 4),
    ]
    async with uow_factory() as uow:
        for order_id, customer, status, minutes in rows:
            dto = OrderSummaryDTO(
                id=order_id,
                customer_id=customer,
                status=status,
                total=Decimal("10.00"),
                created_at=start + timedelta(minutes=minutes),
            )
            await OrderSummaryQuery().save(dto, uow)


async def test_apply_with_explicit_unit_of_work_then_load(
    dispatcher: PersistenceDispatcher, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    async with uow_factory() as uow:
        order = Order(id="order_123", customer_id="cust_456")
        order.add_event(
            OrderCreated(order_id="order_123", customer_id="cust_456", total=Decimal("42.50"))
        )
        assert await dispatcher.apply(order, uow=uow) == "order_123"
    assert order.version == 1
    assert order.pending_events == ()

    async with uow_factory() as uow:
        orders = await dispatcher.fetch_domain(Order, ["order_123"], uow=uow)
    order = orders[0] if orders else None
    assert order is not None
    assert (order.status, order.total, order.version) == ("created", Decimal("42.50"), 1)


async def test_apply_without_unit_of_work_opens_and_commits_one(
    dispatcher: PersistenceDispatcher,
) -> None:
    order = Order(id="order_123", customer_id="cust_456")
    await dispatcher.apply(order)  # Auto-creates UoW from registered factory
    loaded = await dispatcher.fetch_domain(Order, ["order_1", "order_123", "order_3"])
    assert [o.id for o in loaded] == ["order_123"]


async def test_load_multiple_aggregates_in_the_order_asked(
    dispatcher: PersistenceDispatcher,
) -> None:
    for order_id in ["order_1", "order_2", "order_3"]:
        await dispatcher.apply(Order(id=order_id, customer_id="c"))
    orders = await dispatcher.fetch_domain(Order, ["order_3", "missing", "order_1", "order_2"])
    assert [o.id for o in orders] == ["order_3", "order_1", "order_2"]


async def test_fetch_by_ids_and_by_specification_with_stream(
    dispatcher: PersistenceDispatcher,
    uow_factory: InMemoryUnitOfWorkFactory,
    read_replica_uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    await seed_summaries(uow_factory)
    async with read_replica_uow_factory() as uow:
        # ID-based query
        result = await dispatcher.fetch(OrderSummaryDTO, ["order_1", "order_2"], uow=uow)
        orders = await result  # SearchResult -> list
        assert [o.id for o in orders] == ["order_1", "order_2"]

        # Specification-based query
        spec = (
            SpecificationBuilder()
            .where("customer_id", "=", "cust_123")
            .where("status", "=", "submitted")
            .build()
        )
        options = QueryOptions().with_specification(spec).with_pagination(limit=10)
        result = await dispatcher.fetch(OrderSummaryDTO, options, uow=uow)
        orders = await result
        assert sorted(o.id for o in orders) == ["order_1", "order_2", "order_5"]

        # Stream results (requires UnitOfWork)
        streamed = [order.id async for order in result.stream(batch_size=100)]
        assert sorted(streamed) == ["order_1", "order_2", "order_5"]

    # A unit of the command side's factory is refused for the read side's source.
    async with uow_factory() as uow:
        with pytest.raises(SourceMismatchError, match=r"'read_replica'.*'default'"):
            await (await dispatcher.fetch(OrderSummaryDTO, ["order_1"], uow=uow))


async def test_seed_command_handler_submits_an_order(
    dispatcher: PersistenceDispatcher, uow_factory: InMemoryUnitOfWorkFactory
) -> None:
    await dispatcher.apply(Order(id="order_9", customer_id="cust_1"))

    async def handle_submit_order(
        order_id: str, dispatcher: PersistenceDispatcher, uow: UnitOfWork
    ) -> str:
        orders = await dispatcher.fetch_domain(Order, [order_id], uow=uow)
        if not orders:
            raise OrderNotFound(order_id)
        order = orders[0]
        event = OrderSubmitted(
            aggregate_id=order.id,
            order_id=order.id,
            submitted_at=datetime.now(UTC),
        )
        order.add_event(event)
        await dispatcher.apply(order, uow=uow)
        return order.id

    async with uow_factory() as uow:
        assert await handle_submit_order("order_9", dispatcher, uow) == "order_9"
    [order] = await dispatcher.fetch_domain(Order, ["order_9"])
    assert (order.status, order.version) == ("submitted", 2)

    async with uow_factory() as uow:
        with pytest.raises(OrderNotFound):
            await handle_submit_order("nope", dispatcher, uow)


async def test_seed_query_handler_orders_and_paginates(
    dispatcher: PersistenceDispatcher,
    uow_factory: InMemoryUnitOfWorkFactory,
    read_replica_uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    await seed_summaries(uow_factory)

    async def handle_get_customer_orders(
        customer_id: str, limit: int, dispatcher: PersistenceDispatcher, uow: UnitOfWork
    ) -> list[OrderSummaryDTO]:
        spec = SpecificationBuilder().where("customer_id", "=", customer_id).build()
        options = (
            QueryOptions()
            .with_specification(spec)
            .with_ordering("-created_at")
            .with_pagination(limit=limit)
        )
        result = await dispatcher.fetch(OrderSummaryDTO, options, uow=uow)
        return await result

    async with read_replica_uow_factory() as uow:
        newest = await handle_get_customer_orders("cust_123", 2, dispatcher, uow)
    assert [o.id for o in newest] == ["order_5", "order_3"]
