"""Application layer: the command and query handlers, written against the dispatcher only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from cqrs_mongo import IPersistenceDispatcher, NotFoundError, QueryOptions, SpecificationBuilder
from examples.ecommerce.domain import Order, OrderCreated, OrderSubmitted, OrderSummaryDTO


@dataclass(frozen=True)
class CreateOrderCommand:
    order_id: str
    customer_id: str
    total: Decimal


@dataclass(frozen=True)
class SubmitOrderCommand:
    order_id: str


@dataclass(frozen=True)
class GetCustomerOrdersQuery:
    customer_id: str
    limit: int = 10


async def handle_create_order(
    command: CreateOrderCommand, dispatcher: IPersistenceDispatcher, uow: object
) -> str:
    order = Order(id=command.order_id, customer_id=command.customer_id)
    order.add_event(
        OrderCreated(order_id=order.id, customer_id=command.customer_id, total=command.total)
    )
    await dispatcher.apply(order, uow=uow)
    return order.id


async def handle_submit_order(
    command: SubmitOrderCommand, dispatcher: IPersistenceDispatcher, uow: object
) -> str:
    orders = await dispatcher.fetch_domain(Order, [command.order_id], uow=uow)
    if not orders:
        raise NotFoundError("Order", command.order_id)
    order = orders[0]
    order.add_event(
        OrderSubmitted(aggregate_id=order.id, order_id=order.id, submitted_at=datetime.now(UTC))
    )
    await dispatcher.apply(order, uow=uow)
    return order.id


async def handle_get_customer_orders(
    query: GetCustomerOrdersQuery, dispatcher: IPersistenceDispatcher, uow: object = None
) -> list[OrderSummaryDTO]:
    spec = SpecificationBuilder().where("customer_id", "=", query.customer_id).build()
    options = (
        QueryOptions()
        .with_specification(spec)
        .with_ordering("-created_at")
        .with_pagination(limit=query.limit)
    )
    result = await dispatcher.fetch(OrderSummaryDTO, options, uow=uow)
    return await result
