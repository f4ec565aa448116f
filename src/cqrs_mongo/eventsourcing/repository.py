"""The event-sourced repository's logic, written against the event-store and snapshot ports.

``persist`` appends an aggregate's new events at the version it was loaded at, and
``retrieve`` rebuilds aggregates from their newest usable snapshot plus the events after it,
with a constant number of store calls however many ids are asked for. Storage adapters
subclass :class:`EventSourcedRepositoryBase` and say which stores a unit of work uses.
"""

from __future__ import annotations

import logging
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, cast
from weakref import WeakKeyDictionary

from pydantic import ValidationError

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import (
    ConfigurationError,
    DocumentEncodingError,
    EventDecodingError,
    MissingEventHandlerError,
    UnknownEventTypeError,
    check_usable_id,
)
from cqrs_mongo.eventsourcing.ports import EventStore, SnapshotStore
from cqrs_mongo.eventsourcing.registry import EventRegistry, loaded_event_class
from cqrs_mongo.eventsourcing.snapshots import Snapshot, SnapshotStrategy
from cqrs_mongo.eventsourcing.stored_event import StoredEvent, at_store_precision
from cqrs_mongo.eventsourcing.upcasting import UpcasterChain

A = TypeVar("A", bound=AggregateRoot[Any])
ID = TypeVar("ID")

logger = logging.getLogger("cqrs_mongo.eventsourcing")

# Id types checked by identity before the slower check (nearly every id is one of these).
_SCALAR_IDS: frozenset[type[Any]] = frozenset({str, int})


class EventSourcedRepositoryBase(ABC, Generic[A, ID]):
    """Persists aggregates as event streams and rebuilds them from snapshots and events.

    Configure by subclassing; the aggregate type is taken from the generic arguments when
    ``aggregate_type`` is not set::

        class OrderRepository(EventSourcedRepository[Order, str]):
            snapshot_strategy = EveryNEvents(50)

    Class attributes:
        aggregate_type: the aggregate class this repository stores.
        stream_type: the stored stream type (default: the aggregate class name).
        snapshot_strategy: when to snapshot; ``None`` (the default) never snapshots and
            never reads snapshots.
        snapshot_schema_version: the shape of snapshot state this code reads; an aggregate's
            own ``snapshot_schema_version`` ClassVar takes precedence. Snapshots of another
            shape are ignored and the stream is replayed instead.
        event_registry: the event classes of the stream; by default, those the aggregate has
            ``apply_<EventClassName>`` methods for.
        upcasters: upcasters for the default event registry.
    """

    aggregate_type: ClassVar[type[AggregateRoot[Any]]]
    stream_type: ClassVar[str | None] = None
    snapshot_strategy: ClassVar[SnapshotStrategy | None] = None
    snapshot_schema_version: ClassVar[int] = 1
    event_registry: ClassVar[EventRegistry | None] = None
    upcasters: ClassVar[UpcasterChain | None] = None

    _default_registries: ClassVar[dict[type[Any], EventRegistry]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "aggregate_type" not in cls.__dict__:
            inferred = _aggregate_type_from_bases(cls)
            if inferred is not None:
                cls.aggregate_type = inferred

    def __init__(
        self,
        *,
        snapshot_strategy: SnapshotStrategy | None = None,
        event_registry: EventRegistry | None = None,
    ) -> None:
        """Create a repository; the arguments override the class attributes of the same name.

        Raises:
            ConfigurationError: the class names no aggregate type.
        """
        if getattr(type(self), "aggregate_type", None) is None:
            raise ConfigurationError(
                f"{type(self).__qualname__} names no aggregate type: subclass it as "
                f"{type(self).__name__}[MyAggregate, IdType] or set aggregate_type."
            )
        self._snapshot_strategy = snapshot_strategy or type(self).snapshot_strategy
        self._event_registry = event_registry

    # --- what adapters provide ---------------------------------------------------------------

    @abstractmethod
    def event_store(self, uow: Any) -> EventStore:
        """The event store that operations in ``uow`` use."""

    @abstractmethod
    def snapshot_store(self, uow: Any) -> SnapshotStore:
        """The snapshot store that operations in ``uow`` use."""

    # --- configuration, resolved ---------------------------------------------------------------

    @property
    def stream_name(self) -> str:
        """The stream type stored with every event of this repository."""
        return self.stream_type or self.aggregate_type.__name__

    @property
    def events(self) -> EventRegistry:
        """The registry decoding this repository's stored events.

        Raises:
            ConfigurationError: the default registry cannot find an event class.
        """
        if self._event_registry is not None:
            return self._event_registry
        cls = type(self)
        if cls.event_registry is not None:
            return cls.event_registry
        registry = cls._default_registries.get(cls)
        if registry is None:
            registry = EventRegistry.for_aggregate(cls.aggregate_type, upcasters=cls.upcasters)
            cls._default_registries[cls] = registry
        return registry

    @property
    def expected_snapshot_schema(self) -> int:
        """The snapshot schema version this code reads and writes."""
        own = getattr(self.aggregate_type, "snapshot_schema_version", None)
        return own if isinstance(own, int) else self.snapshot_schema_version

    # --- IOperationPersistence -------------------------------------------------------------

    async def persist(self, entity: A, uow: Any, events: Sequence[DomainEvent] | None = None) -> ID:
        """Append ``entity``'s new events at the version it was loaded at.

        ``events`` given explicitly that the aggregate does not hold yet are applied to it
        first (``add_event``), so its state, its stream and its snapshot agree. The version
        moves forward at once and moves back if ``uow`` rolls back; pending events are
        cleared only when ``uow`` commits. Writing twice in one unit appends each event once.

        Returns:
            The aggregate's id.

        Raises:
            ConcurrencyError: the stream moved on since the aggregate was loaded.
            ConfigurationError: ``entity`` is not this repository's aggregate type.
            MissingEventHandlerError: an explicit event has no ``apply_`` method.
        """
        self._check_type(entity)
        if type(entity.id) not in _SCALAR_IDS:
            check_usable_id(self.stream_name, entity.id, entity.version)
        entity_id: ID = entity.id  # (a typed name, not a cast: this runs on every append)
        ledger = _ledger_of(uow)
        if events:
            self._adopt(entity, events, ledger)
        appended = ledger.appended_ids
        pending = entity.pending_events
        new = [e for e in pending if e.event_id.int not in appended] if appended else list(pending)
        if not new:
            return entity_id
        if uow is not None:
            uow.record_write()
        previous = entity.version
        stored = await self.event_store(uow).append(
            entity_id, new, previous, stream_type=self.stream_name, uow=uow
        )
        note_applied_write = getattr(uow, "note_applied_write", None)
        if note_applied_write is not None:
            note_applied_write()  # without a transaction, a rollback now warns
        entity.version = stored[-1].version
        ledger.track(entity, previous, new, uow)
        strategy = self._snapshot_strategy
        if strategy is not None and strategy.should_snapshot(entity, previous, entity.version):
            await self._save_snapshot(entity, uow)
        return entity_id

    async def _save_snapshot(self, entity: A, uow: Any) -> None:
        # A snapshot is a cache of the stream: one that cannot be taken or stored is logged
        # and skipped, never allowed to fail the append it follows.
        try:
            snapshot = self.take_snapshot(entity)
        except Exception as exc:
            logger.warning(
                "Skipping the snapshot of %s %r at version %s: it cannot be taken: %s",
                self.stream_name,
                entity.id,
                entity.version,
                exc,
            )
            return
        try:
            await self.snapshot_store(uow).save(snapshot, uow=uow)
        except DocumentEncodingError as exc:
            logger.warning("Skipping a snapshot that cannot be stored: %s", exc)

    # --- IRetrievalPersistence --------------------------------------------------------------

    async def retrieve(self, ids: Sequence[ID], uow: Any) -> list[A]:
        """The aggregates with these ids, in the order asked, skipping missing ones.

        One snapshot query (when snapshots are enabled) and one event query, for any number
        of ids. Each aggregate's ``version`` is its stream's last version.

        Raises:
            UnknownEventTypeError: a stream holds an event type nobody registered.
            MissingEventHandlerError: the aggregate has no ``apply_`` method for an event.
            EventDecodingError: a stored event is malformed, or the stream has a gap.
            DocumentEncodingError: an id is a document or an array.
        """
        for sid in ids:
            if type(sid) not in _SCALAR_IDS:
                check_usable_id(self.stream_name, sid)
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        rebuilt = await self._from_snapshots(wanted, uow)
        after = {sid: rebuilt[sid].version if sid in rebuilt else 0 for sid in wanted}
        registry = self.events
        source = await self._replay_source(after, registry, uow)
        streams, version_of, decode = source.streams, source.version_of, source.decode
        try:
            for sid in wanted:
                stored = streams.get(sid)
                if not stored:
                    continue
                aggregate = rebuilt.get(sid) or cast(A, self.aggregate_type.blank(sid))
                apply = aggregate.apply_event
                expected = after[sid] + 1
                for event in stored:
                    version = version_of(event)
                    if version != expected:
                        raise self._gap(sid, version, expected)
                    expected += 1
                    apply(decode(event))
                aggregate.version = expected - 1
                rebuilt[sid] = aggregate
        except UnknownEventTypeError as exc:
            self._name_a_removed_apply_method(exc, registry)
            raise
        return [rebuilt[sid] for sid in wanted if sid in rebuilt]

    async def _replay_source(
        self, after_versions: Mapping[Any, int], registry: EventRegistry, uow: Any
    ) -> ReplaySource:
        """What :meth:`retrieve` replays: per stream, its events after the given versions.

        This default reads :class:`StoredEvent` envelopes through the event store's
        ``read_streams`` and decodes each with ``registry.to_event``. An adapter may return
        its own stored form instead (a store's raw documents, say) with the two functions
        that read its version and decode it, if they raise exactly what this default does.
        """
        streams = await self.event_store(uow).read_streams(after_versions, uow=uow)
        return ReplaySource(streams, _stored_version, registry.to_event)

    def _name_a_removed_apply_method(
        self, exc: UnknownEventTypeError, registry: EventRegistry
    ) -> None:
        # The default registry holds the classes the aggregate has apply_ methods for: a class
        # that is loaded but not registered there lost its method, which is what to report.
        if exc.event_type in registry:
            return
        known = loaded_event_class(exc.event_type)
        if known is not None and not hasattr(self.aggregate_type, f"apply_{known.__name__}"):
            raise MissingEventHandlerError(self.aggregate_type, known) from exc

    # --- snapshots ---------------------------------------------------------------------------

    def take_snapshot(self, aggregate: A) -> Snapshot:
        """A snapshot of ``aggregate`` at its current version (override to shape ``state``).

        The state is the aggregate's Python-mode dump, stored as BSON like a state-stored
        aggregate's document: bytes, Decimal, UUID and datetimes keep their types (datetimes
        at the store's millisecond precision, as the events hold them), so anything the
        aggregate could store as a document it can store as a snapshot. A state BSON cannot
        hold (a ``set``, say) makes the store refuse the snapshot, which is then skipped.
        """
        state = at_store_precision(aggregate.model_dump(mode="python", exclude={"version"}))
        return Snapshot.of(
            aggregate.id, self.stream_name, aggregate.version, self.expected_snapshot_schema, state
        )

    def restore_snapshot(self, snapshot: Snapshot) -> A:
        """The aggregate ``snapshot`` holds (override together with :meth:`take_snapshot`).

        Raises:
            pydantic.ValidationError: the state does not validate as the aggregate.
        """
        aggregate = cast(A, self.aggregate_type.model_validate(snapshot.state))
        aggregate.version = snapshot.version
        return aggregate

    async def _from_snapshots(self, wanted: list[Any], uow: Any) -> dict[Any, A]:
        if self._snapshot_strategy is None:
            return {}
        snapshots = await self.snapshot_store(uow).load_many(wanted, uow=uow)
        restored: dict[Any, A] = {}
        for sid, snapshot in snapshots.items():
            if snapshot.schema_version != self.expected_snapshot_schema:
                logger.debug(
                    "Ignoring snapshot of %s %r: schema version %s, expected %s.",
                    self.stream_name,
                    sid,
                    snapshot.schema_version,
                    self.expected_snapshot_schema,
                )
                continue
            try:
                restored[sid] = self.restore_snapshot(snapshot)
            except ValidationError as exc:
                # A snapshot is a cache of the stream: replaying the events is always correct.
                logger.warning(
                    "Ignoring unreadable snapshot of %s %r: %s", self.stream_name, sid, exc
                )
        return restored

    # --- internals -------------------------------------------------------------------------

    def _gap(self, stream_id: Any, found: int, expected: int) -> EventDecodingError:
        # A version that is missing or not a number is not matched by the range query, so it
        # shows as a gap; rebuilding past it would give a wrong state and let the next append
        # reuse a version.
        return EventDecodingError(
            self.stream_name,
            stream_id,
            found,
            "version",
            f"expected version {expected} next; an event before it is missing or its "
            "version is malformed",
        )

    def _check_type(self, entity: Any) -> None:
        if type(entity) is not self.aggregate_type and not isinstance(entity, self.aggregate_type):
            raise ConfigurationError(
                f"{type(self).__qualname__} stores {self.aggregate_type.__qualname__}, "
                f"not {type(entity).__qualname__}."
            )

    @staticmethod
    def _adopt(entity: A, events: Sequence[DomainEvent], ledger: _UnitLedger) -> None:
        known = {e.event_id.int for e in entity.pending_events} | ledger.appended_ids
        for event in events:
            key = event.event_id.int
            if key not in known:
                entity.add_event(event)
                known.add(key)


@dataclass(frozen=True, slots=True)
class ReplaySource:
    """The events :meth:`EventSourcedRepositoryBase.retrieve` folds into aggregates.

    Attributes:
        streams: stream id -> its stored events in version order (streams without any
            may be left out).
        version_of: an event's version, read before it is decoded (to find gaps).
        decode: the domain event a stored event holds; raises as
            :meth:`EventRegistry.to_event` does.
    """

    streams: Mapping[Any, Sequence[Any]]
    version_of: Callable[[Any], int]
    decode: Callable[[Any], DomainEvent]


def _stored_version(event: StoredEvent) -> int:
    return event.version


@dataclass
class _UnitLedger:
    """What one unit of work has appended so far, so a second ``persist`` appends only news.

    Events are known by ``event_id.int``: an int hashes in C, a UUID through Python code.
    """

    appended_ids: set[int] = field(default_factory=set)
    tracked: set[int] = field(default_factory=set)

    def track(self, entity: Any, previous: int, new: list[DomainEvent], uow: Any) -> None:
        self.appended_ids.update([event.event_id.int for event in new])
        if uow is None:
            entity.clear_pending_events(new)
            return
        if id(entity) in self.tracked:
            # The first append of this entity in the unit already knows the version to restore.
            return
        self.tracked.add(id(entity))

        def restore_version() -> None:
            entity.version = previous

        def clear_appended() -> None:
            pending = entity.pending_events
            done = [e for e in pending if e.event_id.int in self.appended_ids]
            # Usually every pending event went out: clearing all skips the identity filter.
            entity.clear_pending_events(None if len(done) == len(pending) else done)

        uow.on_rollback(restore_version)
        uow.on_commit(clear_appended)


_ledgers: WeakKeyDictionary[Any, _UnitLedger] = WeakKeyDictionary()

_LEDGER_ATTRIBUTE = "_cqrs_mongo_event_ledger"


def _ledger_of(uow: Any) -> _UnitLedger:
    # Kept on the unit itself (it lives and dies with it); a unit that takes no attributes
    # (slots) keeps it in a weak map instead. Asked on every append: the attribute is one
    # lookup, where the weak map builds a weak reference with a callback per unit.
    if uow is None:
        return _UnitLedger()
    ledger: _UnitLedger | None = getattr(uow, _LEDGER_ATTRIBUTE, None)
    if ledger is not None:
        return ledger
    ledger = _UnitLedger()
    try:
        setattr(uow, _LEDGER_ATTRIBUTE, ledger)
    except AttributeError:
        ledger = _ledgers.setdefault(uow, ledger)
    return ledger


def _aggregate_type_from_bases(cls: type[Any]) -> type[AggregateRoot[Any]] | None:
    for base in cls.__dict__.get("__orig_bases__", ()):
        origin = typing.get_origin(base)
        if not (isinstance(origin, type) and issubclass(origin, EventSourcedRepositoryBase)):
            continue
        args = typing.get_args(base)
        if args and isinstance(args[0], type) and issubclass(args[0], AggregateRoot):
            return args[0]
    return None
