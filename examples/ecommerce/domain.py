"""Domain layer: the ``Order`` aggregate, its events, and the order-summary read model."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from cqrs_mongo import AggregateRoot, DomainEvent


class OrderCreated(DomainEvent):
    order_id: str
    customer_id: str
    total: Decimal


class OrderSubmitted(DomainEvent):
    order_id: str
    submitted_at: datetime


class Order(AggregateRoot[str]):
    customer_id: str
    status: str = "pending"
    total: Decimal = Decimal("0.00")

    def apply_OrderCreated(self, event: OrderCreated) -> None:
        self.customer_id = event.customer_id
        self.total = event.total
        self.status = "created"

    def apply_OrderSubmitted(self, event: OrderSubmitted) -> None:
        self.status = "submitted"


class OrderSummaryDTO(BaseModel):
    """What the order list screens show: one row per order, kept up by a projection."""

    id: str
    customer_id: str
    status: str
    total: Decimal
    created_at: datetime
