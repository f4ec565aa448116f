"""Projection: a read model fed by events, with one ``on_<EventType>`` handler per event type."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.errors import ConfigurationError
from cqrs_mongo.eventsourcing import EventRegistry, StoredEvent
from cqrs_mongo.projections.context import ProjectionContext

HANDLER_PREFIX = "on_"

Handler = Callable[[Any, ProjectionContext], Awaitable[None]]


class Projection:
    """Base class of projections: handlers per event type that update projection documents.

    A handler is an ``async def on_<EventType>(self, event, ctx)`` method; ``event`` is the
    decoded domain event (upcast to its class's current schema) and ``ctx`` a
    :class:`ProjectionContext` whose writes are made idempotent by the store. Events of types
    without a handler are skipped. The event classes are found from the handlers' type hints,
    from ``events``, or by name among the loaded :class:`DomainEvent` subclasses; an
    ``event_registry`` given to the constructor takes precedence (use it for upcasters).

    Example:
        >>> class OrderSummaries(Projection):
        ...     name = "order_summaries"
        ...
        ...     async def on_OrderCreated(self, event, ctx):
        ...         await ctx.set(event.order_id, customer_id=event.customer_id)

    Attributes:
        name: the read model's name; also its collection until a rebuild moves it.
        indexes: indexes of the read model's collection (``IndexSpec`` or ``IndexModel``),
            created on every collection the worker writes, rebuilt ones included.
        events: event classes to decode with, when hints and names do not find them.
    """

    name: ClassVar[str]
    indexes: ClassVar[Sequence[Any]] = ()
    events: ClassVar[Sequence[type[DomainEvent]]] = ()

    def __init__(self, event_registry: EventRegistry | None = None) -> None:
        """Bind the handlers and the event classes.

        Raises:
            ConfigurationError: ``name`` is not set, or a handler's event class cannot be found.
        """
        if not isinstance(getattr(type(self), "name", None), str) or not type(self).name:
            raise ConfigurationError(f"{type(self).__qualname__} must set `name`.")
        self._handlers: dict[str, Handler] = {
            name[len(HANDLER_PREFIX) :]: method
            for name, method in inspect.getmembers(self, inspect.iscoroutinefunction)
            if name.startswith(HANDLER_PREFIX)
        }
        self.event_registry = event_registry or self._registry_from_handlers()

    @property
    def handled_event_types(self) -> frozenset[str]:
        """The stored event type names this projection has handlers for."""
        return frozenset(self._handlers)

    def handler_for(self, event_type: str) -> Handler | None:
        """The handler of ``event_type``, or ``None`` when the projection ignores it."""
        return self._handlers.get(event_type)

    async def apply(self, stored: StoredEvent, ctx: ProjectionContext) -> bool:
        """Decode ``stored`` and run its handler with ``ctx``; ``False`` if it has none.

        Raises:
            UnknownEventTypeError: the event cannot be decoded.
            Exception: whatever the handler raises.
        """
        handler = self._handlers.get(stored.event_type)
        if handler is None:
            return False
        event = self.event_registry.to_event(stored)
        await handler(event, ctx)
        return True

    def _registry_from_handlers(self) -> EventRegistry:
        registry = EventRegistry(type(self).events)
        for event_type, method in self._handlers.items():
            if event_type not in registry:
                registry.register(_event_class_of(type(self), event_type, method))
        return registry


def _event_class_of(owner: type[Any], event_type: str, method: Any) -> type[DomainEvent]:
    try:
        hints = typing.get_type_hints(method)
    except Exception:  # hints naming classes local to a function cannot be resolved
        hints = {}
    for hint in hints.values():
        if (
            inspect.isclass(hint)
            and issubclass(hint, DomainEvent)
            and hint.event_type == event_type
        ):
            return hint
    candidates = [c for c in _loaded_event_classes() if c.event_type == event_type]
    if len(candidates) == 1:
        return candidates[0]
    found = "no loaded class" if not candidates else f"{len(candidates)} loaded classes"
    raise ConfigurationError(
        f"{owner.__qualname__}.{HANDLER_PREFIX}{event_type}: expected one DomainEvent class "
        f"with event type {event_type!r}, found {found}; list it in `events`."
    )


def _loaded_event_classes() -> list[type[DomainEvent]]:
    found: list[type[DomainEvent]] = []
    pending = list(DomainEvent.__subclasses__())
    while pending:
        event_class = pending.pop()
        pending.extend(event_class.__subclasses__())
        found.append(event_class)
    return found
