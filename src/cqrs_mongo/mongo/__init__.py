"""MongoDB adapters: driver seam, unit of work, runner, repositories and read-side handlers."""

from cqrs_mongo.mongo.codecs import CLIENT_CODEC_KWARGS, CODEC_OPTIONS
from cqrs_mongo.mongo.documents import DocumentMapper
from cqrs_mongo.mongo.driver import BulkOutcome, Capabilities, bulk_write, create_client
from cqrs_mongo.mongo.errors import IndexBuildError
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.eventsourcing.event_store import MongoEventStore
from cqrs_mongo.mongo.eventsourcing.snapshot_store import MongoSnapshotStore
from cqrs_mongo.mongo.indexes import IndexSpec, ensure_indexes
from cqrs_mongo.mongo.projections.event_feed import FeedPosition, MongoEventFeed
from cqrs_mongo.mongo.projections.projection_query import (
    ProjectionPersistence,
    ProjectionQueryPersistence,
    ProjectionSpecificationPersistence,
)
from cqrs_mongo.mongo.projections.projection_store import MongoProjectionStore
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.queries.query_persistence import (
    MongoQueryPersistence,
    MongoReadModel,
    MongoReadModelPersistence,
    MongoSpecificationPersistence,
)
from cqrs_mongo.mongo.state_stored.repository import MongoRepository
from cqrs_mongo.mongo.state_stored.versioned_write import write_versioned
from cqrs_mongo.mongo.transactions.runner import RetryBudget, TransactionAttempts
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.persistence.search_result import Page

__all__ = [
    "CLIENT_CODEC_KWARGS",
    "CODEC_OPTIONS",
    "BulkOutcome",
    "Capabilities",
    "DocumentMapper",
    "FeedPosition",
    "EventSourcedRepository",
    "IndexBuildError",
    "IndexSpec",
    "MongoQueryPersistence",
    "MongoReadModel",
    "MongoReadModelPersistence",
    "MongoRepository",
    "MongoEventFeed",
    "MongoEventStore",
    "MongoProjectionStore",
    "MongoProjectionWorker",
    "MongoSnapshotStore",
    "MongoSpecificationPersistence",
    "MongoUnitOfWork",
    "MongoUnitOfWorkFactory",
    "Page",
    "ProjectionPersistence",
    "ProjectionQueryPersistence",
    "ProjectionSpecificationPersistence",
    "RetryBudget",
    "TransactionAttempts",
    "bulk_write",
    "create_client",
    "ensure_indexes",
    "write_versioned",
]
