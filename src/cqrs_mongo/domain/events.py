"""Domain events: immutable facts that an aggregate records and an event store keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Self
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, model_validator


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC, at BSON's millisecond precision."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def bson_datetime(value: datetime) -> datetime:
    """``value`` as BSON keeps it: aware UTC (naive is taken as UTC), whole milliseconds."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.replace(microsecond=aware.microsecond // 1000 * 1000)


class DomainEvent(BaseModel):
    """Base class of domain events.

    Subclasses declare their payload as pydantic fields. The stored type name is the class
    name unless ``event_type`` is set on the class; ``schema_version`` says which shape of the
    payload this class reads and writes (upcasters lift older shapes to it).

    Example:
        >>> class OrderCreated(DomainEvent):
        ...     order_id: str
        >>> OrderCreated(order_id="o-1").event_type
        'OrderCreated'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1

    event_id: UUID = Field(default_factory=uuid4)
    aggregate_id: Any = None
    occurred_at: datetime = Field(default_factory=utc_now)
    correlation_id: str | None = None
    causation_id: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("event_type"):
            cls.event_type = cls.__name__

    @model_validator(mode="after")
    def _bson_datetimes(self) -> Self:
        # BSON dates are UTC milliseconds with no zone: every top-level datetime of an event is
        # made aware UTC (a naive one is taken to be UTC, as the driver does) and cut to
        # milliseconds, so an event equals itself after a round trip through storage.
        # One check of the validated event, not a validator per field: a per-field validator
        # is a Python call for every field of every event read, and was half of validating one.
        fields = self.__dict__
        for name, value in fields.items():
            if type(value) is datetime and value.tzinfo is UTC and not value.microsecond % 1000:
                continue  # already what the store gives back (nearly every datetime read)
            if isinstance(value, datetime):
                fields[name] = bson_datetime(value)  # the model is frozen: set in its dict
        return self

    def payload(self) -> dict[str, Any]:
        """The event's own fields, without the envelope fields every event has."""
        return self.model_dump(exclude=_ENVELOPE_EXCLUDE)


_ENVELOPE_FIELDS = frozenset(
    {"event_id", "aggregate_id", "occurred_at", "correlation_id", "causation_id"}
)
ENVELOPE_FIELDS = _ENVELOPE_FIELDS
_ENVELOPE_EXCLUDE: set[str] = set(_ENVELOPE_FIELDS)
