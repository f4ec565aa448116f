"""The spec's Complete Example on the in-memory adapters alone (issue 10.4): event-sourced
orders written through the dispatcher land in the event store every repository of the factory
shares, the in-memory runner projects them, and the spec's projection-backed query handler
(``collection`` and ``to_dto`` only) answers the spec's queries from what the runner wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from examples.ecommerce.domain import Order, OrderCreated, OrderSubmitted, OrderSummaryDTO
from examples.ecommerce.infrastructure import OrderSummaryProjection

from cqrs_mongo import (
    InMemoryUnitOfWorkFactory,
    PersistenceDispatcher,
    PersistenceRegistry,
    QueryOptions,
    SpecificationBuilder,
    UnitOfWork,
)
from cqrs_mongo.eventsourcing import InMemoryEventSourcedRepository, shared_event_store
from cqrs_mongo.projections import (
    InMemoryProjectionPersistence,
    InMemoryProjectionRunner,
    shared_projection_store,
)


class OrderRepository(InMemoryEventSourcedRepository[Order, str]):
    """Event-sourced order repository."""


class OrderSummaryQueryPersistence(InMemoryProjectionPersistence[OrderSummaryDTO, str]):
    collection = "order_summaries"

    def to_dto(self, doc: dict[str, Any]) -> OrderSummaryDTO:
        return OrderSummaryDTO(**doc)


def setup_dispatcher(uow_factory: InMemoryUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="default")
    registry.register_retrieval(Order, OrderRepository, source="default")
    registry.register_query(OrderSummaryDTO, OrderSummaryQueryPersistence, source="default")
    registry.register_query_spec(OrderSummaryDTO, OrderSummaryQueryPersistence, source="default")
    return PersistenceDispatcher(uow_factories={"default": uow_factory}, registry=registry)


async def handle_submit_order(
    order_id: str, dispatcher: PersistenceDispatcher, uow: UnitOfWork
) -> str:
    orders = await dispatcher.fetch_domain(Order, [order_id], uow=uow)
    order = orders[0]
    order.add_event(
        OrderSubmitted(aggregate_id=order.id, order_id=order.id, submitted_at=datetime.now(UTC))
    )
    await dispatcher.apply(order, uow=uow)
    return order.id


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


@pytest.fixture
def uow_factory() -> InMemoryUnitOfWorkFactory:
    return InMemoryUnitOfWorkFactory()


async def test_the_complete_example_runs_in_memory(uow_factory: InMemoryUnitOfWorkFactory) -> None:
    dispatcher = setup_dispatcher(uow_factory)
    for n in range(4):
        order = Order(id=f"order_{n}", customer_id="cust_123" if n < 3 else "cust_9")
        order.add_event(
            OrderCreated(
                order_id=order.id,
                customer_id=order.customer_id,
                total=Decimal(f"{n}.50"),
                occurred_at=datetime(2026, 1, 1, n, tzinfo=UTC),
            )
        )
        await dispatcher.apply(order)
    async with uow_factory() as uow:
        assert await handle_submit_order("order_2", dispatcher, uow) == "order_2"

    # Another repository instance on the same factory sees the same stream.
    async with uow_factory() as uow:
        [reloaded] = await OrderRepository().retrieve(["order_2"], uow)
    assert (reloaded.status, reloaded.version) == ("submitted", 2)

    runner = InMemoryProjectionRunner(
        OrderSummaryProjection(), store=shared_projection_store(uow_factory)
    )
    assert await runner.apply_store(shared_event_store(uow_factory)) == 5

    async with uow_factory() as uow:
        newest = await handle_get_customer_orders("cust_123", 2, dispatcher, uow)
        by_ids = await (await dispatcher.fetch(OrderSummaryDTO, ["order_3", "nope", "order_0"]))
    assert [(o.id, o.status) for o in newest] == [("order_2", "submitted"), ("order_1", "created")]
    assert [o.id for o in by_ids] == ["order_3", "order_0"]
    assert by_ids[0] == OrderSummaryDTO(
        id="order_3",
        customer_id="cust_9",
        status="created",
        total=Decimal("3.50"),
        created_at=datetime(2026, 1, 1, 3, tzinfo=UTC),
    )
    everything = await dispatcher.fetch(OrderSummaryDTO, QueryOptions())
    assert await everything.count() == 4


async def test_a_rolled_back_unit_leaves_no_events_in_the_shared_store(
    uow_factory: InMemoryUnitOfWorkFactory,
) -> None:
    dispatcher = setup_dispatcher(uow_factory)
    order = Order(id="order_x", customer_id="c")
    order.add_event(OrderCreated(order_id="order_x", customer_id="c", total=Decimal("1")))
    with pytest.raises(RuntimeError, match="abort"):
        async with uow_factory() as uow:
            await dispatcher.apply(order, uow=uow)
            assert await shared_event_store(uow_factory).stream_version("order_x") == 1
            raise RuntimeError("abort")
    assert shared_event_store(uow_factory).streams == {}
    assert await dispatcher.fetch_domain(Order, ["order_x"]) == []
