"""Infrastructure layer: repositories, read-side handlers and the dispatcher that routes to them."""

from __future__ import annotations

from cqrs_mongo import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWorkFactory
from examples.ecommerce.domain import Order


class OrderRepository(MongoRepository[Order, str]):
    """Orders, stored as state for now (the event-sourced repository replaces it when it lands)."""

    entity_type = Order
    collection = "orders"


def setup_dispatcher(uow_factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="default")
    registry.register_retrieval(Order, OrderRepository, source="default")
    return PersistenceDispatcher(uow_factories={"default": uow_factory}, registry=registry)
