"""The seed's e-commerce model (shared with the example) and in-memory handlers for it."""

from __future__ import annotations

from examples.ecommerce.domain import (
    Order,
    OrderCreated,
    OrderSubmitted,
    OrderSummaryDTO,
)

from cqrs_mongo import InMemoryQueryPersistence, InMemoryRepository

__all__ = [
    "Order",
    "OrderCreated",
    "OrderRepository",
    "OrderSubmitted",
    "OrderSummaryDTO",
    "OrderSummaryQuery",
    "OrderSummarySpecQuery",
]


class OrderRepository(InMemoryRepository[Order, str]):
    entity_type = Order


class OrderSummaryQuery(InMemoryQueryPersistence[OrderSummaryDTO, str]):
    dto_type = OrderSummaryDTO
    collection = "order_summaries"


class OrderSummarySpecQuery(OrderSummaryQuery):
    pass
