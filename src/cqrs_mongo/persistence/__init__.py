"""The storage-agnostic persistence core: ports, registry, dispatcher, results, hooks."""

from cqrs_mongo.persistence.dispatcher import IPersistenceDispatcher, PersistenceDispatcher
from cqrs_mongo.persistence.hooks import Hook, HookEvent, Hooks, LoggingHook
from cqrs_mongo.persistence.in_memory import (
    InMemoryQueryPersistence,
    InMemoryRepository,
    InMemoryStore,
    InMemoryUnitOfWork,
    InMemoryUnitOfWorkFactory,
)
from cqrs_mongo.persistence.ports import (
    IOperationPersistence,
    IQueryPersistence,
    IQuerySpecificationPersistence,
    IRetrievalPersistence,
)
from cqrs_mongo.persistence.registry import PersistenceRegistry
from cqrs_mongo.persistence.search_result import Page, SearchResult
from cqrs_mongo.persistence.unit_of_work import (
    UnitOfWork,
    UnitOfWorkFactory,
    UnitOfWorkState,
    current_unit_of_work,
)

__all__ = [
    "Hook",
    "HookEvent",
    "Hooks",
    "IOperationPersistence",
    "IPersistenceDispatcher",
    "IQueryPersistence",
    "IQuerySpecificationPersistence",
    "IRetrievalPersistence",
    "InMemoryQueryPersistence",
    "InMemoryRepository",
    "InMemoryStore",
    "InMemoryUnitOfWork",
    "InMemoryUnitOfWorkFactory",
    "LoggingHook",
    "Page",
    "PersistenceDispatcher",
    "PersistenceRegistry",
    "SearchResult",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "UnitOfWorkState",
    "current_unit_of_work",
]
