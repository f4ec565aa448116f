"""Projection: a read model fed by events, with one ``on_<EventType>`` handler per event type."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.errors import ConfigurationError
from cqrs_mongo.eventsourcing import EventRegistry, StoredEvent
from cqrs_mongo.eventsourcing.registry import resolve_event_class
from cqrs_mongo.projections.context import ProjectionContext

HANDLER_PREFIX = "on_"

Handler = Callable[[Any, ProjectionContext], Awaitable[None]]


class Projection:
    """Base class of projections: handlers per event type that update projection documents.

    A handler is an ``async def on_<EventClassName>(self, event, ctx)`` method (named after
    the class, like an aggregate's ``apply_<EventClassName>``) and receives the events whose
    stored type is that class's ``event_type``; ``event`` is the decoded domain event (upcast
    to its class's current schema) and ``ctx`` a :class:`ProjectionContext` whose writes the
    store makes idempotent. Events without a handler are skipped. The class named by a handler
    is looked up in the ``event_registry`` given (use one for upcasters), then in ``events``,
    the handler's type hints, and the loaded :class:`DomainEvent` subclasses.

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
        """Bind each handler to the stored type name of its event class.

        Raises:
            ConfigurationError: ``name`` is not set, or a handler's event class cannot be found.
        """
        if not isinstance(getattr(type(self), "name", None), str) or not type(self).name:
            raise ConfigurationError(f"{type(self).__qualname__} must set `name`.")
        self.event_registry = event_registry or EventRegistry(type(self).events)
        self._handlers: dict[str, Handler] = {}
        for method_name, method in inspect.getmembers(self, inspect.iscoroutinefunction):
            if method_name.startswith(HANDLER_PREFIX):
                event_class = _event_class_of(type(self), method_name, method, self.event_registry)
                self._handlers[event_class.event_type] = method

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


def _event_class_of(
    owner: type[Any], method_name: str, method: Any, registry: EventRegistry
) -> type[DomainEvent]:
    """The event class ``on_<ClassName>`` handles, registered in ``registry`` if it was not."""
    class_name = method_name[len(HANDLER_PREFIX) :]
    known = [c for c in registry if c.__name__ == class_name]
    if len(known) == 1:
        return known[0]
    found = resolve_event_class(owner, method_name, HANDLER_PREFIX, method, "list it in `events`")
    return registry.register(found)
