"""PersistenceRegistry: which handler class persists, loads or queries which type, in which source.

Priority decides the order of handlers registered for the same type and kind:

* **operation** handlers form a chain: ``apply`` runs *every* operation handler registered for
  the entity's type, highest priority first (ties in registration order), all in the same unit
  of work, and returns the id the first one returned. A second handler can so write an outbox
  or an audit record atomically with the aggregate. All handlers of one chain must share a
  source, since one unit of work spans one source.
* **retrieval**, **query** and **query_spec** handlers are alternatives: the highest-priority
  one answers (ties: the one registered last, so a later registration overrides).

Lookups follow the type's MRO, so a handler registered for a base class serves subclasses
that have none of their own.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from cqrs_mongo.errors import ConfigurationError, HandlerNotRegisteredError

Kind = Literal["operation", "retrieval", "query", "query_spec"]

DEFAULT_SOURCE = "default"


@dataclass(frozen=True, slots=True)
class Registration:
    """One handler registered for one type and kind."""

    target: type[Any]
    handler_cls: type[Any]
    source: str
    priority: int
    sequence: int


class PersistenceRegistry:
    """Maps entity and result types to their persistence handlers.

    Example:
        >>> registry = PersistenceRegistry()
        >>> class Order: ...
        >>> class OrderRepository: ...
        >>> registry.register_operation(Order, OrderRepository, source="default")
        >>> registry.operations(Order)[0].handler_cls is OrderRepository
        True
    """

    def __init__(self) -> None:
        self._entries: dict[Kind, dict[type[Any], list[Registration]]] = {
            kind: defaultdict(list) for kind in ("operation", "retrieval", "query", "query_spec")
        }
        self._sequence = itertools.count()
        # What each lookup answered, per (kind, type): asked on every apply and fetch, it
        # walks the type's MRO and sorts; any registration clears it.
        self._answers: dict[tuple[Kind, type[Any]], Any] = {}

    def register_operation(
        self,
        entity_type: type[Any],
        handler_cls: type[Any],
        source: str = DEFAULT_SOURCE,
        priority: int = 0,
    ) -> None:
        """Register a write handler (``IOperationPersistence``) for ``entity_type``.

        Raises:
            ConfigurationError: another operation handler of this type uses another source.
        """
        others = {r.source for r in self._entries["operation"].get(entity_type, [])}
        if others and source not in others:
            raise ConfigurationError(
                f"Operation handlers of {entity_type.__qualname__} must share one source: "
                f"{handler_cls.__qualname__} names {source!r}, others use {sorted(others)!r}."
            )
        self._add("operation", entity_type, handler_cls, source, priority)

    def register_retrieval(
        self,
        entity_type: type[Any],
        handler_cls: type[Any],
        source: str = DEFAULT_SOURCE,
        priority: int = 0,
    ) -> None:
        """Register a domain-loading handler (``IRetrievalPersistence``) for ``entity_type``."""
        self._add("retrieval", entity_type, handler_cls, source, priority)

    def register_query(
        self,
        result_type: type[Any],
        handler_cls: type[Any],
        source: str = DEFAULT_SOURCE,
        priority: int = 0,
    ) -> None:
        """Register an id-based read-model handler (``IQueryPersistence``) for ``result_type``."""
        self._add("query", result_type, handler_cls, source, priority)

    def register_query_spec(
        self,
        result_type: type[Any],
        handler_cls: type[Any],
        source: str = DEFAULT_SOURCE,
        priority: int = 0,
    ) -> None:
        """Register a specification handler (``IQuerySpecificationPersistence``)."""
        self._add("query_spec", result_type, handler_cls, source, priority)

    def operations(self, entity_type: type[Any]) -> list[Registration]:
        """The operation chain for ``entity_type``, highest priority first.

        Raises:
            HandlerNotRegisteredError: no operation handler serves the type.
        """
        chain = self._answers.get(("operation", entity_type))
        if chain is None:
            entries = self._lookup("operation", entity_type)
            chain = tuple(sorted(entries, key=lambda r: (-r.priority, r.sequence)))
            self._answers["operation", entity_type] = chain
        return list(chain)

    def retrieval(self, entity_type: type[Any]) -> Registration:
        """The retrieval handler answering for ``entity_type``.

        Raises:
            HandlerNotRegisteredError: none is registered.
        """
        return self._best("retrieval", entity_type)

    def query(self, result_type: type[Any]) -> Registration:
        """The id-based query handler answering for ``result_type``.

        Raises:
            HandlerNotRegisteredError: none is registered.
        """
        return self._best("query", result_type)

    def query_spec(self, result_type: type[Any]) -> Registration:
        """The specification handler answering for ``result_type``.

        Raises:
            HandlerNotRegisteredError: none is registered.
        """
        return self._best("query_spec", result_type)

    def sources(self) -> set[str]:
        """Every source some handler names."""
        return {r.source for table in self._entries.values() for rs in table.values() for r in rs}

    def handler_classes(self) -> set[type[Any]]:
        """Every registered handler class (e.g. to ensure their indexes at start-up)."""
        return {
            r.handler_cls for table in self._entries.values() for rs in table.values() for r in rs
        }

    def _add(
        self, kind: Kind, target: type[Any], handler_cls: type[Any], source: str, priority: int
    ) -> None:
        if not isinstance(target, type) or not isinstance(handler_cls, type):
            raise ConfigurationError(
                f"register_{kind} takes two classes, got {target!r} and {handler_cls!r}."
            )
        self._entries[kind][target].append(
            Registration(target, handler_cls, source, priority, next(self._sequence))
        )
        self._answers.clear()

    def _lookup(self, kind: Kind, target: type[Any]) -> list[Registration]:
        table = self._entries[kind]
        for klass in target.__mro__:
            if klass in table:
                return table[klass]
        raise HandlerNotRegisteredError(kind.replace("_", "-"), target)

    def _best(self, kind: Kind, target: type[Any]) -> Registration:
        best: Registration | None = self._answers.get((kind, target))
        if best is None:
            best = max(self._lookup(kind, target), key=lambda r: (r.priority, r.sequence))
            self._answers[kind, target] = best
        return best
