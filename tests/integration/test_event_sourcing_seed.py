"""The seed's event-sourced order example, end to end on the embedded server."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from examples.ecommerce.domain import Order, OrderCreated, OrderSubmitted

from cqrs_mongo.errors import ConcurrencyError
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.persistence import PersistenceDispatcher, PersistenceRegistry

pytestmark = pytest.mark.requires_transactions


# The seed's domain layer is the e-commerce example's (the spec's code, imports changed).


class OrderRepository(EventSourcedRepository[Order, str]):
    """Event-sourced order repository."""

    pass


def setup_dispatcher(uow_factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="default")
    registry.register_retrieval(Order, OrderRepository, source="default")
    return PersistenceDispatcher(uow_factories={"default": uow_factory}, registry=registry)


# --- the seed's application layer -----------------------------------------------------------


class OrderNotFound(Exception):
    pass


async def handle_submit_order(
    order_id: str, dispatcher: PersistenceDispatcher, uow: MongoUnitOfWork
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


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, source="default")


async def test_create_submit_reload(factory: MongoUnitOfWorkFactory) -> None:
    dispatcher = setup_dispatcher(factory)

    async with factory() as uow:
        order = Order(id="order_123", customer_id="cust_456")
        order.add_event(
            OrderCreated(order_id="order_123", customer_id="cust_456", total=Decimal("99.90"))
        )
        await dispatcher.apply(order, uow=uow)
    async with factory() as uow:
        assert await handle_submit_order("order_123", dispatcher, uow) == "order_123"
    orders = await dispatcher.fetch_domain(Order, ["order_123"])

    assert len(orders) == 1
    reloaded = orders[0]
    assert (reloaded.status, reloaded.version) == ("submitted", 2)
    assert (reloaded.customer_id, reloaded.total) == ("cust_456", Decimal("99.90"))
    assert reloaded.pending_events == ()


async def test_missing_order_is_not_found(factory: MongoUnitOfWorkFactory) -> None:
    dispatcher = setup_dispatcher(factory)

    with pytest.raises(OrderNotFound):
        async with factory() as uow:
            await handle_submit_order("nope", dispatcher, uow)


async def test_apply_without_a_unit_of_work_commits(factory: MongoUnitOfWorkFactory) -> None:
    dispatcher = setup_dispatcher(factory)
    order = Order(id="order_9", customer_id="c")
    order.add_event(OrderCreated(order_id="order_9", customer_id="c", total=Decimal("1")))

    await dispatcher.apply(order)

    [reloaded] = await dispatcher.fetch_domain(Order, ["order_9"])
    assert (reloaded.status, reloaded.version, order.version) == ("created", 1, 1)
    assert order.pending_events == ()


async def test_a_stale_order_conflicts_with_the_versions_named(
    factory: MongoUnitOfWorkFactory,
) -> None:
    dispatcher = setup_dispatcher(factory)
    order = Order(id="order_7", customer_id="c")
    order.add_event(OrderCreated(order_id="order_7", customer_id="c", total=Decimal("1")))
    await dispatcher.apply(order)
    [stale] = await dispatcher.fetch_domain(Order, ["order_7"])
    async with factory() as uow:
        await handle_submit_order("order_7", dispatcher, uow)

    stale.add_event(
        OrderSubmitted(order_id="order_7", submitted_at=datetime(2024, 1, 1, tzinfo=UTC))
    )
    with pytest.raises(
        ConcurrencyError, match=r"Order 'order_7': expected version 1, found version 2"
    ):
        await dispatcher.apply(stale)
    assert stale.version == 1
    assert len(stale.pending_events) == 1
