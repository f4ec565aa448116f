"""Projections, storage-agnostic: Projection base, guarded writes, lifecycle, in-memory runner."""

from cqrs_mongo.projections.context import GuardedWrite, ProjectionContext
from cqrs_mongo.projections.in_memory import (
    InMemoryProjectionContext,
    InMemoryProjectionRunner,
    InMemoryProjectionStore,
)
from cqrs_mongo.projections.in_memory_query import (
    InMemoryProjectionPersistence,
    shared_projection_store,
)
from cqrs_mongo.projections.lifecycle import Lag, RetryPolicy, WorkerLifecycle, WorkerState
from cqrs_mongo.projections.parked import ParkedEvent
from cqrs_mongo.projections.projection import Projection
from cqrs_mongo.projections.stream_keys import decode_stream_key, encode_stream_key
from cqrs_mongo.projections.update_operators import (
    APPLIED_COUNT_FIELD,
    APPLIED_FIELD,
    BOOKKEEPING_FIELDS,
)

__all__ = [
    "APPLIED_COUNT_FIELD",
    "APPLIED_FIELD",
    "BOOKKEEPING_FIELDS",
    "GuardedWrite",
    "InMemoryProjectionContext",
    "InMemoryProjectionPersistence",
    "InMemoryProjectionRunner",
    "InMemoryProjectionStore",
    "Lag",
    "ParkedEvent",
    "Projection",
    "ProjectionContext",
    "RetryPolicy",
    "WorkerLifecycle",
    "WorkerState",
    "decode_stream_key",
    "encode_stream_key",
    "shared_projection_store",
]
