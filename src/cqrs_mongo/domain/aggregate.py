"""Aggregate roots: consistency boundaries with an id, a version and pending events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Self, TypeVar, cast

from pydantic import BaseModel, ConfigDict, PrivateAttr

from cqrs_mongo.domain.events import DomainEvent
from cqrs_mongo.errors import MissingEventHandlerError

ID = TypeVar("ID")


class AggregateRoot(BaseModel, Generic[ID]):
    """Base class of aggregates, state-stored or event-sourced.

    ``version`` is the version last persisted: 0 for an aggregate never stored. Repositories
    write conditionally on it and move it forward when a write succeeds. ``add_event`` applies
    an event through the ``apply_<EventClassName>`` method and keeps it as pending until a
    repository takes it.

    Example:
        >>> class Renamed(DomainEvent):
        ...     name: str
        >>> class Customer(AggregateRoot[str]):
        ...     name: str = ""
        ...     def apply_Renamed(self, event: Renamed) -> None:
        ...         self.name = event.name
        >>> c = Customer(id="c-1")
        >>> c.add_event(Renamed(name="Ada"))
        >>> (c.name, len(c.pending_events), c.version)
        ('Ada', 1, 0)
    """

    model_config = ConfigDict(validate_assignment=False, extra="ignore")

    id: ID
    version: int = 0

    _pending_events: list[DomainEvent] = PrivateAttr(default_factory=list)

    def _pending(self) -> list[DomainEvent]:
        # The list behind ``_pending_events``, read from pydantic's store of private values
        # (``__pydantic_private__``). Reading ``self._pending_events`` goes through
        # BaseModel.__getattr__, which probes the attribute descriptor with ``hasattr`` and so
        # raises and catches an AttributeError on every read: ~19,000 instructions, more
        # than validating a small event, on every append and every commit.
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        pending: list[DomainEvent] = private["_pending_events"]
        return pending

    def add_event(self, event: DomainEvent) -> None:
        """Apply ``event`` to this aggregate and record it as pending.

        The event's ``aggregate_id`` is filled in with this aggregate's id when absent.

        Raises:
            MissingEventHandlerError: the aggregate has no ``apply_<EventClassName>`` method.
        """
        if event.aggregate_id is None:
            event = event.model_copy(update={"aggregate_id": self.id})
        self.apply_event(event)
        self._pending().append(event)

    def apply_event(self, event: DomainEvent) -> None:
        """Apply ``event`` without recording it (used when replaying stored events).

        Raises:
            MissingEventHandlerError: the aggregate has no ``apply_<EventClassName>`` method.
        """
        handler = getattr(self, f"apply_{type(event).__name__}", None)
        if handler is None:
            raise MissingEventHandlerError(type(self), type(event))
        handler(event)

    @property
    def pending_events(self) -> tuple[DomainEvent, ...]:
        """Events added since the aggregate was last persisted, oldest first."""
        return tuple(self._pending())

    def clear_pending_events(self, events: Sequence[DomainEvent] | None = None) -> None:
        """Forget persisted events: all of them, or only those in ``events``."""
        pending = self._pending()
        if events is None:
            pending.clear()
            return
        persisted = {id(event) for event in events}
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        private["_pending_events"] = [e for e in pending if id(e) not in persisted]

    def restore_pending_events(self, events: Sequence[DomainEvent]) -> None:
        """Put events back in front of the pending list (after a rolled-back write)."""
        pending = self._pending()
        known = {id(event) for event in pending}
        pending[:0] = [e for e in events if id(e) not in known]

    @classmethod
    def blank(cls, aggregate_id: Any) -> Self:
        """An instance with only its id set, before any event is applied (for rehydration)."""
        # model_construct fills every defaulted field (default factories included) and leaves
        # required ones unset until the first event sets them.
        return cast(Self, cls.model_construct(id=aggregate_id, version=0))
