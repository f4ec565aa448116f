"""EventSourcedRepository on MongoDB: aggregates as event streams, with optional snapshots.

SHARDING (collections this module creates, and their shard keys):

- events (``events_collection``, default ``events``): ``{stream_id: 1}``, ranged. It prefixes
  the unique ``(stream_id, version)`` index, so that index stays legal and enforced, and an
  append (one stream) is a single-shard write. Do not use a hashed key: it cannot back the
  unique index.
- snapshots (``snapshots_collection``, default ``snapshots``): ``{_id: 1}`` (``_id`` is the
  stream id); ``{_id: "hashed"}`` also works. Saves are upserts pinned to ``_id``.

A unit of work that writes events and a snapshot whose chunks live on different shards
commits with a two-phase commit; that is correct, only slower.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any, ClassVar, TypeVar

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import ConfigurationError
from cqrs_mongo.eventsourcing.registry import EventRegistry
from cqrs_mongo.eventsourcing.repository import EventSourcedRepositoryBase, ReplaySource
from cqrs_mongo.mongo.eventsourcing.event_store import (
    DEFAULT_EVENTS_COLLECTION,
    STREAM_VERSION_INDEX,
    MongoEventStore,
    document_decoder,
)
from cqrs_mongo.mongo.eventsourcing.snapshot_store import (
    DEFAULT_SNAPSHOTS_COLLECTION,
    MongoSnapshotStore,
)

A = TypeVar("A", bound=AggregateRoot[Any])
ID = TypeVar("ID")

# id(client) -> {(database name, events collection)} whose unique index this process ensured.
# Keyed by identity: pymongo clients compare equal by address, mongomock clients by host.
_indexed: dict[int, set[tuple[str, str]]] = {}


class EventSourcedRepository(EventSourcedRepositoryBase[A, ID]):
    """An ``IOperationPersistence`` + ``IRetrievalPersistence`` storing aggregates as streams.

    Configure by subclassing; it is constructible with no arguments, and takes the database
    and session from the unit of work it is given::

        class OrderRepository(EventSourcedRepository[Order, str]):
            snapshot_strategy = EveryNEvents(100)   # optional

    ``persist`` appends the aggregate's pending events (and any given as ``events=``) in one
    ``insert_many`` at the version the aggregate was loaded at; ``retrieve`` loads any number
    of aggregates with one snapshot query (when snapshots are enabled) and one event query.

    The unique ``(stream_id, version)`` index that makes appends safe is created on the
    first use of each collection by this process (outside the unit's transaction); call
    :meth:`ensure_indexes` at start-up to create it before any traffic.

    Class attributes (beyond those of :class:`EventSourcedRepositoryBase`):
        events_collection: the events collection.
        snapshots_collection: the snapshots collection.
    """

    events_collection: ClassVar[str] = DEFAULT_EVENTS_COLLECTION
    snapshots_collection: ClassVar[str] = DEFAULT_SNAPSHOTS_COLLECTION
    # What cqrs_mongo.mongo.indexes.ensure_indexes reads from a handler class.
    collection: ClassVar[str] = DEFAULT_EVENTS_COLLECTION
    indexes: ClassVar[Sequence[Any]] = (STREAM_VERSION_INDEX,)

    # Per instance once set: the stores last handed out (see event_store), and the database
    # handle last known to have the events index (see _ensure_indexes_once).
    _last_event_store: MongoEventStore | None = None
    _last_snapshot_store: MongoSnapshotStore | None = None
    _indexed_database: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.collection = cls.events_collection

    def event_store(self, uow: Any) -> MongoEventStore:
        """The event store on ``uow``'s database.

        Raises:
            ConfigurationError: ``uow`` is not a Mongo unit of work.
        """
        database = _database(self, uow)
        # Units of one factory share a database handle: reuse the store (and its collection
        # handle, which pymongo builds anew on every lookup) while the handle is the same.
        store = self._last_event_store
        if store is None or store.database is not database:
            store = self._last_event_store = MongoEventStore(database, self.events_collection)
        return store

    def snapshot_store(self, uow: Any) -> MongoSnapshotStore:
        """The snapshot store on ``uow``'s database.

        Raises:
            ConfigurationError: ``uow`` is not a Mongo unit of work.
        """
        database = _database(self, uow)
        # As for the event store: one store (and collection handle) per database handle.
        store = self._last_snapshot_store
        if store is None or store.database is not database:
            store = self._last_snapshot_store = MongoSnapshotStore(
                database, self.snapshots_collection
            )
        return store

    async def ensure_indexes(self, database: Any) -> None:
        """Create the events collection's unique ``(stream_id, version)`` index (idempotent)."""
        await MongoEventStore(database, self.events_collection).ensure_indexes()

    async def persist(self, entity: A, uow: Any, events: Sequence[DomainEvent] | None = None) -> ID:
        """Append ``entity``'s new events in ``uow``, as the base class describes.

        Raises:
            ConcurrencyError: the stream moved on since the aggregate was loaded.
            ConfigurationError: ``uow`` is not a Mongo unit of work, or ``entity`` is not of
                this repository's aggregate type.
        """
        if _database(self, uow) is not self._indexed_database:
            await self._ensure_indexes_once(uow)
        return await super().persist(entity, uow, events=events)

    async def retrieve(self, ids: Sequence[ID], uow: Any) -> list[A]:
        """Load aggregates in ``uow``, as the base class describes.

        Raises:
            ConfigurationError: ``uow`` is not a Mongo unit of work.
            UnknownEventTypeError: a stream holds an event type nobody registered.
        """
        if _database(self, uow) is not self._indexed_database:
            await self._ensure_indexes_once(uow)
        return await super().retrieve(ids, uow)

    async def _replay_source(
        self, after_versions: Mapping[Any, int], registry: EventRegistry, uow: Any
    ) -> ReplaySource:
        # The stored documents, decoded one by one as retrieve folds them (no StoredEvent per
        # event): same query, same checks, same errors as the StoredEvent path. A store
        # replaced or changed by a subclass keeps that path, so its reads are what run.
        store = self.event_store(uow)
        if type(store).read_streams is not MongoEventStore.read_streams:
            return await super()._replay_source(after_versions, registry, uow)
        documents = await store.read_stream_documents(after_versions, uow=uow)
        return ReplaySource(documents, _VERSION, document_decoder(registry))

    async def _ensure_indexes_once(self, uow: Any) -> None:
        # Done before this repository's first query in the unit, outside its session: an
        # index build cannot run inside a transaction, and one that waits for a transaction
        # already holding the collection would wait for this very unit. Calling
        # ensure_indexes at start-up avoids the question altogether.
        database = _database(self, uow)
        if database is self._indexed_database:
            return  # this very handle was seen below, so its client has the index
        client = getattr(uow, "client", None)
        key = (str(getattr(database, "name", "")), self.events_collection)
        done = _indexed.get(id(client)) if client is not None else None
        if done is not None and key in done:
            self._indexed_database = database
            return
        await self.ensure_indexes(database)
        if client is not None:
            if done is None:
                done = _indexed[id(client)] = set()
                with contextlib.suppress(TypeError):  # a client without weak references
                    weakref.finalize(client, _indexed.pop, id(client), None)
            done.add(key)
            self._indexed_database = database


_VERSION = itemgetter("version")


def _database(repository: Any, uow: Any) -> Any:
    database = getattr(uow, "database", None)
    if database is None:
        raise ConfigurationError(
            f"{type(repository).__qualname__} needs a Mongo unit of work with a database "
            f"and a session, got {type(uow).__qualname__}."
        )
    return database
