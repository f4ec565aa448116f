"""The data every implementation reads, generated deterministically and seeded once per run."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from cqrs_mongo import QueryOptions, SpecificationBuilder
from cqrs_mongo.mongo import IndexSpec

BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
STATUSES = ("created", "submitted", "paid", "shipped")
CUSTOMERS = 200
REGIONS = 10
SEED_CUSTOMERS = 1_000
SEED_CARTS = 100
EVENTS_PER_CART = 10
PAGE_SIZE = 50
STREAM_BATCH = 1_000
PAGE_CUSTOMER = "cust-007"
PAGE_STATUS = "submitted"
STREAM_REGION = "region-3"

ORDER_ROW_INDEXES = (
    IndexSpec(keys=[("customer_id", 1), ("status", 1), ("created_at", -1)], name="by_customer"),
    IndexSpec(keys=[("region", 1)], name="by_region"),
)


def order_row(i: int) -> dict[str, Any]:
    """Row ``i`` of the read model, as stored (``_id``, Decimal and aware datetime values)."""
    return {
        "_id": f"row-{i:06d}",
        "customer_id": f"cust-{i % CUSTOMERS:03d}",
        "status": STATUSES[(i // CUSTOMERS) % len(STATUSES)],
        "total": Decimal(f"{(i * 37) % 100_000 / 100:.2f}"),
        "created_at": BASE_TIME + timedelta(seconds=i),
        "region": f"region-{i % REGIONS}",
        "item_count": i % 9,
        "note": f"order {i} for customer {i % CUSTOMERS}",
    }


def customer_document(i: int, prefix: str = "cust") -> dict[str, Any]:
    """A customer as ``MongoRepository`` stores it (version 1)."""
    return {
        "_id": f"{prefix}-{i:06d}",
        "version": 1,
        "name": f"Customer {i}",
        "email": f"customer{i}@example.com",
        "tier": "gold" if i % 5 == 0 else "standard",
        "balance": Decimal(f"{i % 1000}.25"),
        "created_at": BASE_TIME + timedelta(minutes=i),
        "tags": ["retail", f"segment-{i % 4}"],
    }


def page_filter() -> dict[str, Any]:
    return {"customer_id": PAGE_CUSTOMER, "status": PAGE_STATUS}


def page_options() -> QueryOptions:
    spec = (
        SpecificationBuilder()
        .where("customer_id", "=", PAGE_CUSTOMER)
        .where("status", "=", PAGE_STATUS)
        .build()
    )
    return (
        QueryOptions()
        .with_specification(spec)
        .with_ordering("-created_at")
        .with_pagination(limit=PAGE_SIZE, offset=0)
    )


def stream_filter(rows: int, total_rows: int) -> dict[str, Any]:
    """All rows when streaming the whole collection, else one region (a tenth of it)."""
    return {} if rows >= total_rows else {"region": STREAM_REGION}


def stream_options(rows: int, total_rows: int) -> QueryOptions:
    if rows >= total_rows:
        return QueryOptions()
    spec = SpecificationBuilder().where("region", "=", STREAM_REGION).build()
    return QueryOptions().with_specification(spec)


def load_ids(count: int = 100) -> list[str]:
    """The customer ids of the "load 100 by ids" workload, spread over the collection."""
    step = SEED_CUSTOMERS // count
    return [f"cust-{i:06d}" for i in range(0, SEED_CUSTOMERS, step)][:count]


def row_ids(count: int = 100) -> list[str]:
    return [f"row-{i:06d}" for i in range(0, count * 7, 7)]


def cart_ids() -> list[str]:
    return [f"seed-cart-{i:04d}" for i in range(SEED_CARTS)]


@dataclass
class IdSource:
    """Fresh ids for the write workloads, distinct per implementation and run."""

    prefix: str
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def next(self) -> str:
        return f"{self.prefix}-{next(self._counter):07d}"


# --- one event-sourced aggregate per workload (es_stream*, es_snapshot) ----------------------

STREAM_LENGTHS = (10, 100, 1_000)
SNAPSHOT_EVERY = 1_000


def stream_cart_id(events: int) -> str:
    """The cart of ``events`` events the es_stream<events> workload loads."""
    return f"stream-cart-{events:05d}"


SNAPSHOT_CART_ID = "snapshot-cart-01000"
