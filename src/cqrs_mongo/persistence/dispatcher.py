"""PersistenceDispatcher: routes apply, fetch_domain and fetch to registered handlers.

Without a unit of work, the dispatcher opens one from the factory of the handler's source and
commits it (``apply``) or uses a read-only one (reads). With a unit of work, it runs in it and
leaves committing to the caller; a unit of another source is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, overload

from cqrs_mongo.domain import AggregateRoot
from cqrs_mongo.errors import (
    ConfigurationError,
    InvalidSpecificationError,
    SourceMismatchError,
    SourceNotRegisteredError,
    UnitOfWorkError,
)
from cqrs_mongo.persistence.hooks import Hooks
from cqrs_mongo.persistence.registry import PersistenceRegistry, Registration
from cqrs_mongo.persistence.search_result import Page, SearchResult, closing_stream
from cqrs_mongo.persistence.unit_of_work import UnitOfWork, flush_held
from cqrs_mongo.specifications import QueryOptions, Specification, SpecificationBuilder

T = TypeVar("T")
R = TypeVar("R")
ID = TypeVar("ID")

HandlerFactory = Callable[[type[Any]], Any]


class IPersistenceDispatcher(Protocol):
    """What callers of a dispatcher (plain or caching) rely on."""

    @overload
    async def apply(
        self, entity: AggregateRoot[ID], uow: Any = None, events: list[Any] | None = None
    ) -> ID: ...

    @overload
    async def apply(self, entity: Any, uow: Any = None, events: list[Any] | None = None) -> Any: ...

    async def apply(self, entity: Any, uow: Any = None, events: list[Any] | None = None) -> Any:
        """Persist ``entity`` (command side) and return its id."""
        ...

    async def fetch_domain(
        self, entity_type: type[T], ids: Sequence[Any], uow: Any = None
    ) -> list[T]:
        """Load aggregates by id (command side)."""
        ...

    async def fetch(self, result_type: type[T], criteria: Any, uow: Any = None) -> SearchResult[T]:
        """Read models by ids, specification or ``QueryOptions`` (query side)."""
        ...


def ensure_ids(target: type[Any], ids: Any, operation: str) -> list[Any]:
    """``ids`` as a list, refusing a lone string (which would iterate as characters).

    Raises:
        InvalidSpecificationError: ``ids`` is a str/bytes, a builder or not a sequence.
    """
    if isinstance(ids, SpecificationBuilder):
        raise InvalidSpecificationError(
            f"{operation}({target.__qualname__}, ...) got a SpecificationBuilder; call .build() "
            "on it to pass the Specification it describes."
        )
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (Sequence, set, frozenset)):
        raise InvalidSpecificationError(
            f"{operation}({target.__qualname__}, ...) takes a list of ids, a Specification or "
            f"QueryOptions, not {type(ids).__name__} {ids!r}; wrap a single id in a list."
        )
    return list(ids)


def _check_active(uow: Any) -> None:
    # A closed (or never begun) unit has no session: reading through it would silently
    # read outside any transaction, so it is refused as a write through it is.
    if isinstance(uow, UnitOfWork) and not uow.is_active:
        raise UnitOfWorkError(f"Cannot use the unit of work: it is {uow.state.value}.")


class PersistenceDispatcher:
    """Routes command-side and query-side persistence calls to their handlers.

    Args:
        uow_factories: source name -> callable returning a fresh unit of work. A unit passed
            as ``uow=`` must come from the factory of the handler's source (the package's
            factories stamp their units); a unit built by hand, with no factory and no
            ``source``, is accepted for any source.
        registry: the handler registrations.
        handler_factory: builds a handler from its class (default: ``cls()``); called once per
            class, the instance is reused, so handlers must keep no per-call state.
        hooks: instrumentation called around every operation.
    """

    def __init__(
        self,
        uow_factories: Mapping[str, Callable[[], Any]],
        registry: PersistenceRegistry,
        handler_factory: HandlerFactory | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self._uow_factories = dict(uow_factories)
        # id(factory) -> the source names it is registered under: a unit stamped with its
        # factory is known to belong to those sources, whether or not it names one itself.
        self._factory_sources: dict[int, set[str]] = {}
        for name, factory in self._uow_factories.items():
            declared = getattr(factory, "source", None)
            if declared is not None and declared != name:
                raise ConfigurationError(
                    f"The unit-of-work factory registered for source {name!r} says its units "
                    f"belong to source {declared!r}; register it under {declared!r} or drop "
                    "its source argument."
                )
            self._factory_sources.setdefault(id(factory), set()).add(name)
        self.registry = registry
        self._handler_factory: HandlerFactory = handler_factory or (lambda cls: cls())
        self._handlers: dict[type[Any], Any] = {}
        self._unit_types: dict[type[Any], bool] = {}  # unit type -> is it a UnitOfWork
        self.hooks = hooks if hooks is not None else Hooks()

    # --- command side ----------------------------------------------------------------------

    @overload
    async def apply(
        self, entity: AggregateRoot[ID], uow: Any = None, events: list[Any] | None = None
    ) -> ID: ...

    @overload
    async def apply(self, entity: Any, uow: Any = None, events: list[Any] | None = None) -> Any: ...

    async def apply(self, entity: Any, uow: Any = None, events: list[Any] | None = None) -> Any:
        """Persist ``entity`` through every operation handler of its type.

        Args:
            entity: the aggregate to write.
            uow: the unit of work to write in; without one, the dispatcher opens one from the
                source's factory and commits it before returning.
            events: events to persist in addition to the aggregate's pending events (passed
                to handlers as ``events=``).

        Returns:
            The id returned by the highest-priority handler.

        Raises:
            HandlerNotRegisteredError: no operation handler serves the entity's type.
            SourceNotRegisteredError: no factory for the handler's source (``uow`` omitted).
            SourceMismatchError: ``uow`` belongs to another source, or comes from a factory
                that is not this dispatcher's factory for the handler's source.
        """
        target = type(entity)
        chain = self.registry.operations(target)
        source = chain[0].source
        if not self.hooks.watched:  # the span would do nothing: not even build it
            return await self._in_unit(
                source, target, uow, False, self._persist, chain, entity, events
            )
        async with self.hooks.span("apply", target, [getattr(entity, "id", None)], source):
            return await self._in_unit(
                source, target, uow, False, self._persist, chain, entity, events
            )

    async def _persist(
        self, active: Any, chain: list[Registration], entity: Any, events: list[Any] | None
    ) -> Any:
        result: Any = None
        touched = getattr(active, "touched", None)
        if touched is not None:
            # Not contextlib.suppress: that builds a context manager on every apply.
            try:  # noqa: SIM105
                touched.add((type(entity).__qualname__, getattr(entity, "id", None)))
            except TypeError:
                pass  # an unhashable id (a dict, say) is the handler's to refuse
        for position, registration in enumerate(chain):
            handler = self._handler(registration)
            if position:
                await flush_held(active)  # the next handler (an outbox, an audit) sees it
            if events is None:
                outcome = await handler.persist(entity, active)
            else:
                outcome = await handler.persist(entity, active, events=events)
            if position == 0:
                result = outcome
        return result

    async def fetch_domain(
        self, entity_type: type[T], ids: Sequence[Any], uow: Any = None
    ) -> list[T]:
        """Load aggregates of ``entity_type`` by id, in the order asked, skipping missing ones.

        Raises:
            HandlerNotRegisteredError: no retrieval handler serves the type.
            InvalidSpecificationError: ``ids`` is a single string rather than a list.
        """
        wanted = ensure_ids(entity_type, ids, "fetch_domain")
        registration = self.registry.retrieval(entity_type)
        source = registration.source
        async with self.hooks.span("fetch_domain", entity_type, wanted, source):
            return await self._in_unit(
                source, entity_type, uow, True, self._retrieve, registration, wanted
            )

    async def _retrieve(self, active: Any, registration: Registration, ids: list[Any]) -> list[Any]:
        return list(await self._handler(registration).retrieve(ids, active))

    # --- query side ------------------------------------------------------------------------

    async def fetch(self, result_type: type[T], criteria: Any, uow: Any = None) -> SearchResult[T]:
        """Read models of ``result_type`` by a list of ids, a specification or ``QueryOptions``.

        Nothing runs until the result is awaited, streamed, counted or asked for its first
        item; each of those runs in ``uow``, or in a fresh read-only unit of work.

        Raises:
            HandlerNotRegisteredError: no handler of the needed kind serves the type.
            InvalidSpecificationError: ``criteria`` is a single string or of another kind.
        """
        if isinstance(criteria, (Specification, QueryOptions)):
            registration = self.registry.query_spec(result_type)
            return self._spec_result(registration, result_type, criteria, uow)
        wanted = ensure_ids(result_type, criteria, "fetch")
        registration = self.registry.query(result_type)
        return self._ids_result(registration, result_type, wanted, uow)

    def _ids_result(
        self, registration: Registration, target: type[T], ids: list[Any], uow: Any
    ) -> SearchResult[T]:
        handler = self._handler(registration)

        async def load() -> list[T]:
            async with self._read(registration, target, ids, uow, "load") as active:
                return list(await handler.fetch(ids, active))

        async def stream(batch_size: int) -> AsyncIterator[T]:
            # Ids are fetched a batch at a time, so memory stays at one batch.
            async with self._read(registration, target, ids, uow, "stream") as active:
                for start in range(0, len(ids), batch_size):
                    for item in await handler.fetch(ids[start : start + batch_size], active):
                        yield item

        async def count() -> int:
            return len(await load())

        async def first() -> T | None:
            async for item in stream(1):
                return item
            return None

        return SearchResult(load, stream=stream, count=count, first=first)

    def _spec_result(
        self, registration: Registration, target: type[T], criteria: Any, uow: Any
    ) -> SearchResult[T]:
        handler = self._handler(registration)

        async def load() -> list[T]:
            async with self._read(registration, target, (), uow, "load") as active:
                inner: SearchResult[T] = await handler.fetch(criteria, active)
                return await inner

        async def stream(batch_size: int) -> AsyncIterator[T]:
            async with self._read(registration, target, (), uow, "stream") as active:
                inner: SearchResult[T] = await handler.fetch(criteria, active)
                # Closed with this generator, so an early exit releases the cursor now.
                async with closing_stream(inner.stream(batch_size)) as items:
                    async for item in items:
                        yield item

        async def count() -> int:
            async with self._read(registration, target, (), uow, "count") as active:
                inner: SearchResult[T] = await handler.fetch(criteria, active)
                return await inner.count()

        async def first() -> T | None:
            async with self._read(registration, target, (), uow, "first") as active:
                inner: SearchResult[T] = await handler.fetch(criteria, active)
                return await inner.first()

        async def page() -> Page[T]:
            async with self._read(registration, target, (), uow, "page") as active:
                inner: SearchResult[T] = await handler.fetch(criteria, active)
                return await inner.page()

        return SearchResult(load, stream=stream, count=count, first=first, page=page)

    # --- units of work and handlers --------------------------------------------------------

    @asynccontextmanager
    async def _read(
        self,
        registration: Registration,
        target: type[Any],
        ids: Sequence[Any],
        uow: Any,
        mode: str,
    ) -> AsyncIterator[Any]:
        # The span covers the query itself, not the building of the lazy result.
        async with (
            self.hooks.span("fetch", target, ids, registration.source, {"mode": mode}),
            self._unit(registration.source, target, uow, read_only=True) as active,
        ):
            yield active

    @asynccontextmanager
    async def _unit(
        self, source: str, target: type[Any], uow: Any, *, read_only: bool
    ) -> AsyncIterator[Any]:
        if uow is not None:
            self._check_source(uow, source, target)
            _check_active(uow)
            await flush_held(uow)  # a write the unit holds back goes before this read
            yield uow
            return
        async with self._new_unit(source, target, read_only) as active:
            yield active

    async def _in_unit(
        self,
        source: str,
        target: type[Any],
        uow: Any,
        read_only: bool,
        work: Callable[..., Awaitable[R]],
        *args: Any,
    ) -> R:
        # The same as ``async with self._unit(...)``, without building a context manager on
        # every apply and fetch_domain.
        if uow is not None:
            self._check_source(uow, source, target)
            _check_active(uow)
            # A write the unit holds back goes first, so this handler's work sees it (and
            # a second write makes the unit a transaction).
            await flush_held(uow)
            return await work(uow, *args)
        async with self._new_unit(source, target, read_only) as active:
            return await work(active, *args)

    def _check_source(self, uow: Any, source: str, target: type[Any]) -> None:
        actual = getattr(uow, "source", None)
        if actual is not None:
            if actual != source:
                raise SourceMismatchError(target, source, actual)
            return
        origin = getattr(uow, "factory", None)
        if origin is None:
            return  # built by hand: nothing says where it belongs (documented as accepted)
        names = self._factory_sources.get(id(origin))
        if names is None or self._uow_factories.get(next(iter(names))) is not origin:
            # A factory of its own over the same database as a registered one (two factories
            # for one client and database) writes where that source writes.
            names = self._sources_at(getattr(origin, "location", None))
        if not names:
            raise SourceMismatchError(
                target,
                source,
                None,
                "the unit of work comes from a factory that is not in this dispatcher's "
                f"uow_factories and writes elsewhere than any of them (use the factory "
                f"registered for {source!r})",
            )
        if source not in names:
            raise SourceMismatchError(target, source, ", ".join(sorted(names)))

    def _sources_at(self, location: Any) -> set[str]:
        if location is None:
            return set()
        return {
            name
            for name, factory in self._uow_factories.items()
            if getattr(factory, "location", None) == location
        }

    def _new_unit(self, source: str, target: type[Any], read_only: bool) -> Any:
        factory = self._uow_factories.get(source)
        if factory is None:
            raise SourceNotRegisteredError(source, target)
        unit = factory()
        kind = type(unit)
        ours = self._unit_types.get(kind)
        if ours is None:  # an ABC check is slow enough to be worth asking once per type
            ours = self._unit_types[kind] = isinstance(unit, UnitOfWork)
        if ours:
            unit.read_only = read_only
            if unit.source is None:
                unit.source = source
        return unit

    def _handler(self, registration: Registration) -> Any:
        handler = self._handlers.get(registration.handler_cls)
        if handler is None:
            handler = self._handler_factory(registration.handler_cls)
            self._handlers[registration.handler_cls] = handler
        return handler
