"""Projections, storage-agnostic: Projection base, buffered writes, lifecycle, in-memory runner."""

from cqrs_mongo.projections.context import ProjectionContext, ProjectionWrite
from cqrs_mongo.projections.in_memory import (
    AfterCommit,
    InMemoryProjectionContext,
    InMemoryProjectionRunner,
    InMemoryProjectionStore,
    run_after_commit,
)
from cqrs_mongo.projections.in_memory_query import (
    InMemoryProjectionPersistence,
    shared_projection_store,
)
from cqrs_mongo.projections.keys import identity_key
from cqrs_mongo.projections.lifecycle import (
    Lag,
    ProjectionStatus,
    RetryPolicy,
    WorkerLifecycle,
    WorkerState,
)
from cqrs_mongo.projections.parked import ParkedEvent
from cqrs_mongo.projections.projection import Projection
from cqrs_mongo.projections.update_operators import BOOKKEEPING_FIELDS

__all__ = [
    "BOOKKEEPING_FIELDS",
    "AfterCommit",
    "InMemoryProjectionContext",
    "InMemoryProjectionPersistence",
    "InMemoryProjectionRunner",
    "InMemoryProjectionStore",
    "Lag",
    "ParkedEvent",
    "Projection",
    "ProjectionContext",
    "ProjectionStatus",
    "ProjectionWrite",
    "RetryPolicy",
    "WorkerLifecycle",
    "WorkerState",
    "identity_key",
    "run_after_commit",
    "shared_projection_store",
]
