"""StoredEvent: the storage envelope of one domain event at one version of one stream."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cqrs_mongo.domain import DomainEvent


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One event as a store keeps it: position, type, shape version, payload and metadata.

    Stores write it and read it back unchanged; turning it into a :class:`DomainEvent` (and
    lifting old payload shapes) is the job of :class:`~cqrs_mongo.eventsourcing.EventRegistry`.

    Attributes:
        stream_id: the aggregate id the stream belongs to.
        stream_type: the stream's kind, by default the aggregate class name.
        version: position in the stream, from 1, without gaps.
        event_type: the stored type name (the event class's ``event_type``).
        schema_version: the payload shape the writer used (the class's ``schema_version``).
        payload: the event's own fields, as plain values.
        event_id: the event's unique id.
        occurred_at: when the event happened, timezone-aware UTC.
        correlation_id: the id of the conversation the event belongs to, if any.
        causation_id: the id of the message that caused the event, if any.
    """

    stream_id: Any
    stream_type: str
    version: int
    event_type: str
    schema_version: int
    payload: dict[str, Any]
    event_id: UUID
    occurred_at: datetime
    correlation_id: str | None = None
    causation_id: str | None = None

    @classmethod
    def from_event(
        cls, event: DomainEvent, stream_id: Any, stream_type: str, version: int
    ) -> StoredEvent:
        """The envelope for ``event`` written at ``version`` of stream ``stream_id``."""
        return cls(
            stream_id=stream_id,
            stream_type=stream_type,
            version=version,
            event_type=type(event).event_type,
            schema_version=type(event).schema_version,
            payload=at_store_precision(event.payload()),
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
        )


def at_store_precision(value: Any) -> Any:
    """``value`` with every datetime made UTC-aware and cut to whole milliseconds.

    BSON dates hold milliseconds and no zone, so that is what a Mongo store gives back;
    the envelope applies the same rule for every store, so an in-memory store used in unit
    tests returns exactly what MongoDB would. Dicts, lists and tuples are walked.

    Example:
        >>> at_store_precision({"at": datetime(2024, 1, 1, 0, 0, 0, 123456)})["at"]
        datetime.datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(microsecond=aware.microsecond // 1000 * 1000)
    if isinstance(value, dict):
        return {key: at_store_precision(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [at_store_precision(item) for item in value]
    return value
