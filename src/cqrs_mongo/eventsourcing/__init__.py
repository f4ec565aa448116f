"""Event sourcing, storage-agnostic: envelopes, registry, upcasters, snapshots, in-memory stores."""

from cqrs_mongo.eventsourcing.expected_version import Expected, ExpectedVersion
from cqrs_mongo.eventsourcing.in_memory import (
    InMemoryEventSourcedRepository,
    InMemoryEventStore,
    InMemorySnapshotStore,
    shared_event_store,
    shared_snapshot_store,
)
from cqrs_mongo.eventsourcing.ports import EventStore, SnapshotStore
from cqrs_mongo.eventsourcing.registry import EventRegistry
from cqrs_mongo.eventsourcing.repository import EventSourcedRepositoryBase
from cqrs_mongo.eventsourcing.snapshots import EveryNEvents, Snapshot, SnapshotStrategy
from cqrs_mongo.eventsourcing.stored_event import StoredEvent
from cqrs_mongo.eventsourcing.upcasting import Upcaster, UpcasterChain

__all__ = [
    "EventRegistry",
    "EventSourcedRepositoryBase",
    "EventStore",
    "EveryNEvents",
    "Expected",
    "ExpectedVersion",
    "InMemoryEventSourcedRepository",
    "InMemoryEventStore",
    "InMemorySnapshotStore",
    "shared_event_store",
    "shared_snapshot_store",
    "Snapshot",
    "SnapshotStore",
    "SnapshotStrategy",
    "StoredEvent",
    "Upcaster",
    "UpcasterChain",
]
