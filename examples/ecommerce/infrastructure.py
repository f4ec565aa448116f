"""Infrastructure layer: repositories, read-side handlers and the dispatcher that routes to them."""

from __future__ import annotations

import os

from cqrs_mongo import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.mongo import IndexSpec, MongoUnitOfWorkFactory
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.projections.projection_query import ProjectionPersistence
from cqrs_mongo.projections import Projection, ProjectionContext
from examples.ecommerce.domain import Order, OrderCreated, OrderSubmitted, OrderSummaryDTO

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


# Command side


class OrderRepository(EventSourcedRepository[Order, str]):
    """Event-sourced order repository: one document per event in ``events``."""


# Query side


class OrderSummaryProjection(Projection):
    """Keeps ``order_summaries`` up to date; the projection worker feeds it the events."""

    name = "order_summaries"
    indexes = (IndexSpec(keys=[("customer_id", 1), ("created_at", -1)], name="by_customer"),)

    async def on_OrderCreated(self, event: OrderCreated, ctx: ProjectionContext) -> None:
        await ctx.set(
            event.order_id,
            customer_id=event.customer_id,
            status="created",
            total=event.total,
            created_at=event.occurred_at,
        )

    async def on_OrderSubmitted(self, event: OrderSubmitted, ctx: ProjectionContext) -> None:
        await ctx.update(event.order_id, {"$set": {"status": "submitted"}})


class OrderSummaryQueryPersistence(ProjectionPersistence[OrderSummaryDTO, str]):
    """Order summaries by ids and by specification, read from the projection."""

    dto_type = OrderSummaryDTO
    collection = "order_summaries"


def setup_dispatcher(uow_factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="default")
    registry.register_retrieval(Order, OrderRepository, source="default")
    registry.register_query(OrderSummaryDTO, OrderSummaryQueryPersistence, source="default")
    registry.register_query_spec(OrderSummaryDTO, OrderSummaryQueryPersistence, source="default")
    return PersistenceDispatcher(uow_factories={"default": uow_factory}, registry=registry)


def setup_cache(
    inner: PersistenceDispatcher, redis: RedisCacheService, namespace: str
) -> CachingPersistenceDispatcher:
    """Read-through caching on Redis; if Redis is down, reads simply go to MongoDB."""
    return CachingPersistenceDispatcher(
        inner=inner,
        cache_service=redis,
        default_ttl=300,
        namespace=namespace,
    )
