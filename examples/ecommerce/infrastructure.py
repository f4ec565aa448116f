"""Infrastructure layer: repositories, read-side handlers and the dispatcher that routes to them."""

from __future__ import annotations

import os

from cqrs_mongo import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.mongo import MongoUnitOfWorkFactory
from cqrs_mongo.mongo.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.persistence.caching_dispatcher import CachingPersistenceDispatcher
from examples.ecommerce.domain import Order

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


class OrderRepository(EventSourcedRepository[Order, str]):
    """Event-sourced order repository: one document per event in ``events``."""


def setup_dispatcher(uow_factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="default")
    registry.register_retrieval(Order, OrderRepository, source="default")
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
