"""EventRegistry: stored event type names -> event classes, and stored events -> domain events."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from pydantic import ValidationError

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.domain.events import ENVELOPE_FIELDS
from cqrs_mongo.errors import ConfigurationError, EventDecodingError, UnknownEventTypeError
from cqrs_mongo.eventsourcing.stored_event import StoredEvent
from cqrs_mongo.eventsourcing.upcasting import UpcasterChain

E = TypeVar("E", bound=type[DomainEvent])

_APPLY_PREFIX = "apply_"
_BASE_VALIDATE = DomainEvent.model_validate.__func__  # type: ignore[attr-defined]

Validator = Callable[[dict[str, Any]], DomainEvent]
"""Validates an event's fields (payload and envelope, one flat dict) into its event."""


class EventRegistry:
    """Maps stored type names to event classes and decodes stored events into them.

    A stored event whose schema version is older than its class's ``schema_version`` is lifted
    by the upcaster chain first; a type nobody registered, or a schema version newer than the
    class knows, raises :class:`UnknownEventTypeError` rather than being skipped.

    Example:
        >>> class Renamed(DomainEvent):
        ...     name: str
        >>> registry = EventRegistry([Renamed])
        >>> registry.resolve("Renamed") is Renamed
        True
    """

    def __init__(
        self,
        events: Iterable[type[DomainEvent]] = (),
        upcasters: UpcasterChain | None = None,
    ) -> None:
        self.upcasters = upcasters if upcasters is not None else UpcasterChain()
        self._classes: dict[str, type[DomainEvent]] = {}
        for event_class in events:
            self.register(event_class)

    @classmethod
    def for_aggregate(
        cls, aggregate_type: type[Any], upcasters: UpcasterChain | None = None
    ) -> EventRegistry:
        """A registry of the events ``aggregate_type`` has ``apply_<EventClassName>`` methods for.

        Each method's event class is taken from its type hint, or else found by name among the
        loaded :class:`DomainEvent` subclasses.

        Raises:
            ConfigurationError: an ``apply_`` method's event class cannot be found, or two
                loaded classes share its name.
        """
        registry = cls(upcasters=upcasters)
        for name, method in inspect.getmembers(aggregate_type, inspect.isfunction):
            if name.startswith(_APPLY_PREFIX) and name != "apply_event":
                event_class = resolve_event_class(
                    aggregate_type,
                    name,
                    _APPLY_PREFIX,
                    method,
                    "give the repository an event_registry",
                )
                registry.register(event_class)
        return registry

    def register(self, event_class: E) -> E:
        """Register ``event_class`` under its ``event_type``; returns it (usable as decorator).

        Raises:
            ConfigurationError: another class is registered under the same type name.
        """
        name = event_class.event_type
        known = self._classes.get(name)
        if known is not None and known is not event_class:
            raise ConfigurationError(
                f"Event type {name!r} is already registered to {known.__qualname__}, "
                f"not {event_class.__qualname__}."
            )
        self._classes[name] = event_class
        return event_class

    def resolve(self, event_type: str, schema_version: int | None = None) -> type[DomainEvent]:
        """The class registered for ``event_type``.

        Raises:
            UnknownEventTypeError: no class is registered under that name.
        """
        try:
            return self._classes[event_type]
        except KeyError:
            raise UnknownEventTypeError(event_type, schema_version) from None

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._classes

    def __iter__(self) -> Iterator[type[DomainEvent]]:
        return iter(self._classes.values())

    def validator_for(self, event_type: str, schema_version: int) -> Validator | None:
        """What validates an event of ``event_type`` stored at ``schema_version``, when that
        is all decoding it takes; ``None`` when it takes more (see :meth:`to_event`).

        The validator takes the event's fields as one flat dict, payload and envelope
        (``event_id``, ``aggregate_id``, ``occurred_at``, ``correlation_id``,
        ``causation_id``), and raises :class:`pydantic.ValidationError` as
        ``model_validate`` does. ``None`` means an unknown type or a payload whose schema
        version differs from its class's: :meth:`to_event` raises or upcasts those.
        Stores decoding many events look it up once per type, not once per event.
        """
        event_class = self._classes.get(event_type)
        if event_class is None or event_class.schema_version != schema_version:
            return None
        return _validator(event_class)

    def to_event(self, stored: StoredEvent) -> DomainEvent:
        """The domain event ``stored`` holds, lifted to its class's current schema version.

        Raises:
            UnknownEventTypeError: the type is not registered, or was written with a schema
                version newer than its class.
            ConfigurationError: an upcaster needed to lift the payload is missing.
        """
        event_class = self.resolve(stored.event_type, stored.schema_version)
        target = event_class.schema_version
        payload = stored.payload
        if stored.schema_version != target:
            if stored.schema_version > target:
                raise UnknownEventTypeError(stored.event_type, stored.schema_version)
            payload = self.upcasters.upcast(
                stored.event_type, stored.schema_version, target, payload
            )
        data = {
            **payload,
            "event_id": stored.event_id,
            "aggregate_id": stored.stream_id,
            "occurred_at": stored.occurred_at,
            "correlation_id": stored.correlation_id,
            "causation_id": stored.causation_id,
        }
        try:
            return _validator(event_class)(data)
        except ValidationError as exc:
            raise invalid_payload(stored, exc) from exc


def _validator(event_class: type[DomainEvent]) -> Validator:
    if event_class.model_validate.__func__ is _BASE_VALIDATE:  # type: ignore[attr-defined]
        # What model_validate does, minus its Python wrapper: runs for every event read.
        # Typed by annotation, not typing.cast: cast is a Python call on every event.
        validate: Validator = event_class.__pydantic_validator__.validate_python
        return validate
    return event_class.model_validate


def invalid_payload(stored: StoredEvent, exc: ValidationError) -> EventDecodingError:
    """The :class:`EventDecodingError` for a stored event its class does not validate."""
    first = exc.errors()[0] if exc.error_count() else {"loc": (), "msg": str(exc)}
    location = ".".join(str(part) for part in first["loc"])
    envelope = location in _ENVELOPE_KEYS
    field = location if envelope else f"payload.{location}" if location else "payload"
    return EventDecodingError(
        stored.stream_type,
        stored.stream_id,
        stored.version,
        field,
        f"{stored.event_type} does not validate: {first['msg']}",
    )


_ENVELOPE_KEYS = frozenset(ENVELOPE_FIELDS)


def resolve_event_class(
    owner: type[Any], method_name: str, prefix: str, method: Any, remedy: str
) -> type[DomainEvent]:
    """The event class a handler method named ``<prefix><ClassName>`` takes.

    Found from the method's type hints, else among the loaded ``DomainEvent`` subclasses
    (which must hold exactly one of that name).

    Raises:
        ConfigurationError: no class, or several, of that name; the message ends with
            ``remedy``.
    """
    class_name = method_name[len(prefix) :]
    try:
        hints = typing.get_type_hints(method)
    except Exception:  # hints naming classes local to a function cannot be resolved
        hints = {}
    for hint in hints.values():
        if inspect.isclass(hint) and issubclass(hint, DomainEvent) and hint.__name__ == class_name:
            return hint
    candidates = [c for c in _all_event_classes() if c.__name__ == class_name]
    if len(candidates) == 1:
        return candidates[0]
    found = "no loaded class" if not candidates else f"{len(candidates)} loaded classes"
    raise ConfigurationError(
        f"{owner.__qualname__}.{method_name}: expected one DomainEvent class named "
        f"{class_name!r}, found {found}; {remedy}."
    )


def _all_event_classes() -> Iterator[type[DomainEvent]]:
    pending = list(DomainEvent.__subclasses__())
    while pending:
        event_class = pending.pop()
        pending.extend(event_class.__subclasses__())
        yield event_class


def loaded_event_class(event_type: str) -> type[DomainEvent] | None:
    """The one loaded ``DomainEvent`` class stored as ``event_type``, or ``None`` (none, or
    several)."""
    found = [cls for cls in _all_event_classes() if cls.event_type == event_type]
    return found[0] if len(found) == 1 else None
