"""The event-store and snapshot-store ports that repositories are written against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.eventsourcing.expected_version import Expected
from cqrs_mongo.eventsourcing.snapshots import Snapshot
from cqrs_mongo.eventsourcing.stored_event import StoredEvent


class EventStore(Protocol):
    """Append-only streams of events, one stream per aggregate.

    Every method takes the unit of work it runs in (``None`` runs outside any).
    """

    async def append(
        self,
        stream_id: Any,
        events: Sequence[DomainEvent],
        expected_version: Expected,
        *,
        stream_type: str,
        uow: Any = None,
    ) -> list[StoredEvent]:
        """Append ``events`` after ``expected_version``, all or none; returns what was stored.

        Raises:
            ConcurrencyError: the stream is not at the expected version.
        """
        ...

    async def read_stream(
        self, stream_id: Any, *, after_version: int = 0, uow: Any = None
    ) -> list[StoredEvent]:
        """The events of one stream with a version above ``after_version``, oldest first."""
        ...

    async def read_streams(
        self, after_versions: Mapping[Any, int], *, uow: Any = None
    ) -> dict[Any, list[StoredEvent]]:
        """For each stream id, its events above the given version, in one query."""
        ...

    async def stream_version(self, stream_id: Any, *, uow: Any = None) -> int:
        """The version of the stream's last event (0 for a stream that does not exist)."""
        ...


class SnapshotStore(Protocol):
    """The newest snapshot of each stream."""

    async def save(self, snapshot: Snapshot, *, uow: Any = None) -> bool:
        """Store ``snapshot`` unless a snapshot at the same or a newer version exists.

        Returns:
            Whether the snapshot was stored.
        """
        ...

    async def load_many(self, stream_ids: Sequence[Any], *, uow: Any = None) -> dict[Any, Snapshot]:
        """The newest snapshot of each of ``stream_ids`` that has one, in one query."""
        ...
