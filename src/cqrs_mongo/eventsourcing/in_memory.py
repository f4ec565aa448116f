"""In-memory event and snapshot stores, for users' unit tests: same rules, no database.

Writes land at once; when given a unit of work they are undone if it rolls back, so a failing
command leaves nothing behind, as a Mongo transaction would. Payloads are deep-copied in and
out, so a test cannot change stored history by mutating what it wrote or read.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import ConcurrencyError
from cqrs_mongo.eventsourcing.expected_version import Expected, describe, exact_version
from cqrs_mongo.eventsourcing.registry import EventRegistry
from cqrs_mongo.eventsourcing.repository import EventSourcedRepositoryBase
from cqrs_mongo.eventsourcing.snapshots import Snapshot, SnapshotStrategy
from cqrs_mongo.eventsourcing.stored_event import StoredEvent

A = TypeVar("A", bound=AggregateRoot[Any])
ID = TypeVar("ID")


class InMemoryEventStore:
    """An :class:`~cqrs_mongo.eventsourcing.ports.EventStore` over Python lists.

    Example:
        >>> store = InMemoryEventStore()
        >>> store.streams
        {}
    """

    def __init__(self) -> None:
        self.streams: dict[Any, list[StoredEvent]] = {}

    async def append(
        self,
        stream_id: Any,
        events: Sequence[DomainEvent],
        expected_version: Expected,
        *,
        stream_type: str,
        uow: Any = None,
    ) -> list[StoredEvent]:
        """Append ``events`` after ``expected_version``, all or none.

        Raises:
            ConcurrencyError: the stream is not at the expected version.
            ValueError: ``expected_version`` is not a valid expected version.
        """
        exact = exact_version(expected_version)
        stream = self.streams.setdefault(stream_id, [])
        actual = len(stream)
        if exact is not None and exact != actual:
            raise ConcurrencyError(stream_type, stream_id, describe(expected_version), actual)
        stored = [
            copy.deepcopy(StoredEvent.from_event(event, stream_id, stream_type, actual + offset))
            for offset, event in enumerate(events, start=1)
        ]
        stream.extend(stored)
        if stored and uow is not None:
            uow.on_rollback(lambda: self._remove(stream_id, stored))
        return [copy.deepcopy(event) for event in stored]

    async def read_stream(
        self, stream_id: Any, *, after_version: int = 0, uow: Any = None
    ) -> list[StoredEvent]:
        """The events of one stream with a version above ``after_version``, oldest first."""
        stream = self.streams.get(stream_id, [])
        return [copy.deepcopy(event) for event in stream[after_version:]]

    async def read_streams(
        self, after_versions: Mapping[Any, int], *, uow: Any = None
    ) -> dict[Any, list[StoredEvent]]:
        """For each stream id, its events above the given version (empty streams omitted)."""
        found: dict[Any, list[StoredEvent]] = {}
        for stream_id, after in after_versions.items():
            events = await self.read_stream(stream_id, after_version=after)
            if events:
                found[stream_id] = events
        return found

    async def stream_version(self, stream_id: Any, *, uow: Any = None) -> int:
        """The version of the stream's last event (0 for a stream that does not exist)."""
        return len(self.streams.get(stream_id, []))

    def _remove(self, stream_id: Any, stored: list[StoredEvent]) -> None:
        doomed = {id(event) for event in stored}
        stream = self.streams.get(stream_id, [])
        stream[:] = [event for event in stream if id(event) not in doomed]
        if not stream:
            self.streams.pop(stream_id, None)


class InMemorySnapshotStore:
    """A :class:`~cqrs_mongo.eventsourcing.ports.SnapshotStore` over a dict."""

    def __init__(self) -> None:
        self.snapshots: dict[Any, Snapshot] = {}

    async def save(self, snapshot: Snapshot, *, uow: Any = None) -> bool:
        """Store ``snapshot`` unless one at the same or a newer version exists.

        Returns:
            Whether the snapshot was stored.
        """
        previous = self.snapshots.get(snapshot.stream_id)
        if previous is not None and previous.version >= snapshot.version:
            return False
        kept = copy.deepcopy(snapshot)
        self.snapshots[snapshot.stream_id] = kept
        if uow is not None:
            uow.on_rollback(lambda: self._restore(kept, previous))
        return True

    async def load_many(self, stream_ids: Sequence[Any], *, uow: Any = None) -> dict[Any, Snapshot]:
        """The snapshot of each of ``stream_ids`` that has one."""
        return {
            stream_id: copy.deepcopy(self.snapshots[stream_id])
            for stream_id in stream_ids
            if stream_id in self.snapshots
        }

    def _restore(self, written: Snapshot, previous: Snapshot | None) -> None:
        if self.snapshots.get(written.stream_id) is not written:
            return
        if previous is None:
            del self.snapshots[written.stream_id]
        else:
            self.snapshots[written.stream_id] = previous


EVENTS_KEY = "cqrs_mongo.events"
SNAPSHOTS_KEY = "cqrs_mongo.snapshots"


def shared_event_store(source: Any) -> InMemoryEventStore:
    """The event store shared by every unit of ``source``'s in-memory store.

    ``source`` is an ``InMemoryUnitOfWorkFactory``, an ``InMemoryUnitOfWork`` or an
    ``InMemoryStore``; feed it to ``InMemoryProjectionRunner.apply_store``.

    Raises:
        TypeError: ``source`` holds no in-memory store.
    """
    return _in_memory_store(source).shared(EVENTS_KEY, InMemoryEventStore)  # type: ignore[no-any-return]


def shared_snapshot_store(source: Any) -> InMemorySnapshotStore:
    """The snapshot store shared by every unit of ``source``'s in-memory store.

    Raises:
        TypeError: ``source`` holds no in-memory store.
    """
    return _in_memory_store(source).shared(SNAPSHOTS_KEY, InMemorySnapshotStore)  # type: ignore[no-any-return]


def _in_memory_store(source: Any) -> Any:
    store = getattr(source, "store", source)
    if not callable(getattr(store, "shared", None)):
        raise TypeError(
            f"Expected an in-memory unit of work, its factory or its store, got {source!r}."
        )
    return store


class InMemoryEventSourcedRepository(EventSourcedRepositoryBase[A, ID]):
    """An event-sourced repository over in-memory stores, for unit tests of command handlers.

    Subclass it like the Mongo one (``class Orders(InMemoryEventSourcedRepository[Order,
    str])``). Unless given stores of its own, it uses the event and snapshot stores of the
    unit of work's in-memory store, so every repository (and ``shared_event_store(factory)``,
    e.g. for ``InMemoryProjectionRunner``) sees the events written through one unit-of-work
    factory. Called without an in-memory unit, it falls back to private stores.
    """

    def __init__(
        self,
        event_store: InMemoryEventStore | None = None,
        snapshot_store: InMemorySnapshotStore | None = None,
        *,
        snapshot_strategy: SnapshotStrategy | None = None,
        event_registry: EventRegistry | None = None,
    ) -> None:
        """Create the repository.

        Raises:
            ConfigurationError: the class names no aggregate type.
        """
        super().__init__(snapshot_strategy=snapshot_strategy, event_registry=event_registry)
        self._own_events = event_store
        self._own_snapshots = snapshot_store
        self.stored_events = event_store if event_store is not None else InMemoryEventStore()
        self.stored_snapshots = (
            snapshot_store if snapshot_store is not None else InMemorySnapshotStore()
        )

    def event_store(self, uow: Any) -> InMemoryEventStore:
        """The store given to this repository, else the unit's shared one, else a private one."""
        if self._own_events is None and _holds_store(uow):
            return shared_event_store(uow)
        return self.stored_events

    def snapshot_store(self, uow: Any) -> InMemorySnapshotStore:
        """The store given to this repository, else the unit's shared one, else a private one."""
        if self._own_snapshots is None and _holds_store(uow):
            return shared_snapshot_store(uow)
        return self.stored_snapshots


def _holds_store(uow: Any) -> bool:
    return callable(getattr(getattr(uow, "store", None), "shared", None))
