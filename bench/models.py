"""The benchmark's models, once as cqrs-mongo sees them and once as Beanie documents."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from beanie import Document
from pydantic import BaseModel

from cqrs_mongo import AggregateRoot, DomainEvent

# --- state-stored aggregate (workloads 1 and 2) ----------------------------------------------


class Customer(AggregateRoot[str]):
    name: str
    email: str
    tier: str
    balance: Decimal
    created_at: datetime
    tags: list[str]


class BeanieCustomer(Document):
    id: str  # type: ignore[assignment]
    version: int = 0
    name: str
    email: str
    tier: str
    balance: Decimal
    created_at: datetime
    tags: list[str]

    class Settings:
        name = "customers"


# --- read model (workloads 3, 4 and 7) -------------------------------------------------------


class OrderRow(BaseModel):
    id: str
    customer_id: str
    status: str
    total: Decimal
    created_at: datetime
    region: str
    item_count: int
    note: str


class BeanieOrderRow(Document):
    id: str  # type: ignore[assignment]
    customer_id: str
    status: str
    total: Decimal
    created_at: datetime
    region: str
    item_count: int
    note: str

    class Settings:
        name = "order_rows"


# --- event-sourced aggregate (workloads 5 and 6) ---------------------------------------------


class CartOpened(DomainEvent):
    customer_id: str


class ItemAdded(DomainEvent):
    sku: str
    quantity: int
    price: Decimal


class Cart(AggregateRoot[str]):
    customer_id: str = ""
    lines: int = 0
    total: Decimal = Decimal("0")

    def apply_CartOpened(self, event: CartOpened) -> None:
        self.customer_id = event.customer_id

    def apply_ItemAdded(self, event: ItemAdded) -> None:
        self.lines += 1
        self.total += event.price * event.quantity


CART_EVENTS: dict[str, type[DomainEvent]] = {"CartOpened": CartOpened, "ItemAdded": ItemAdded}


class BeanieEvent(Document):
    """An event document of the same shape as cqrs-mongo's event store writes."""

    id: UUID  # type: ignore[assignment]
    stream_id: str
    stream_type: str
    version: int
    event_type: str
    schema_version: int
    payload: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime

    class Settings:
        name = "events"


BEANIE_MODELS: list[type[Document]] = [BeanieCustomer, BeanieOrderRow, BeanieEvent]


# --- event-sourced streams of one aggregate (workloads es_stream*, es_snapshot) ---------------


class SnapshotCart(Cart):
    """A cart whose repository snapshots every 1,000 events (its own stream type)."""
