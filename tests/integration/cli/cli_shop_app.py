"""The application the CLI tests point ``--app cli_shop_app:app`` at (run in a subprocess).

The database comes from ``CQRS_CLI_DB`` and the server from ``MONGODB_URI``; the ``Tallies``
projection fails on a ``poison`` event unless ``CQRS_CLI_HEALED`` is set, so a test can park
an event and then replay it with the handler "fixed".
"""

from __future__ import annotations

import os
from decimal import Decimal

from cqrs_mongo import AggregateRoot, DomainEvent, PersistenceRegistry
from cqrs_mongo.cli import CqrsMongoApp
from cqrs_mongo.eventsourcing import EventRegistry, UpcasterChain
from cqrs_mongo.mongo import EventSourcedRepository, IndexSpec, MongoRepository
from cqrs_mongo.projections import Projection, ProjectionContext, RetryPolicy


class ItemSold(DomainEvent):
    schema_version = 2
    sku: str
    price: Decimal
    currency: str  # added in schema version 2
    poison: bool = False


class Till(AggregateRoot[str]):
    sold: int = 0

    def apply_ItemSold(self, event: ItemSold) -> None:
        self.sold += 1


class TillRepository(EventSourcedRepository[Till, str]): ...


class Shelf(AggregateRoot[str]):
    sku: str = ""


class ShelfRepository(MongoRepository[Shelf, str]):
    entity_type = Shelf
    collection = "shelves"
    indexes = (IndexSpec(keys=[("sku", 1)], unique=True, name="sku_unique"),)


class Tallies(Projection):
    name = "tallies"

    async def on_ItemSold(self, event: ItemSold, ctx: ProjectionContext) -> None:
        if event.poison and not os.environ.get("CQRS_CLI_HEALED"):
            raise ValueError(f"cannot tally {event.sku}")
        await ctx.inc(ctx.stream_id, sold=1)


upcasters = UpcasterChain()


@upcasters.register("ItemSold", from_version=1)
def add_currency(payload: dict[str, object]) -> dict[str, object]:
    return {**payload, "currency": "EUR"}


registry = PersistenceRegistry()
registry.register_operation(Till, TillRepository)
registry.register_retrieval(Till, TillRepository)
registry.register_operation(Shelf, ShelfRepository)

app = CqrsMongoApp(
    database=os.environ.get("CQRS_CLI_DB", "cli_shop"),
    registry=registry,
    projections=[Tallies()],
    event_registry=EventRegistry([ItemSold], upcasters=upcasters),
    worker_options={"retry": RetryPolicy(max_attempts=2, base_delay=0.01)},
)
