"""MongoEventStore: one document per event, a unique (stream_id, version) index as the lock.

SHARDING: shard the events collection on ``{stream_id: 1}`` (ranged). The unique index
``(stream_id, version)`` is prefixed by that key, so it stays legal and enforced on a sharded
cluster (a hashed key could not back it), and every append (one stream) goes to one shard.
Each event's ``_id`` is its random event id, unique in practice though mongos checks ``_id``
uniqueness per shard only.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import PyMongoError

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.errors import EventDecodingError
from cqrs_mongo.eventsourcing.expected_version import Expected, describe, exact_version
from cqrs_mongo.eventsourcing.registry import EventRegistry, invalid_payload
from cqrs_mongo.eventsourcing.stored_event import StoredEvent, stored_event
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.codecs import ENCODING_ERRORS
from cqrs_mongo.mongo.errors import conflict_error, is_conflict, is_too_large, unstorable_error
from cqrs_mongo.mongo.transactions.unit_of_work import send_write, session_of
from cqrs_mongo.persistence.hooks import current_trace_context, observed
from cqrs_mongo.persistence.unit_of_work import flush_held

DEFAULT_EVENTS_COLLECTION = "events"

STREAM_ORDER = [("stream_id", ASCENDING), ("version", ASCENDING)]
"""The events' ``(stream_id, version)`` order: the key of :data:`STREAM_VERSION_INDEX`, the
sort of every read of several streams, and the hint where a planner could scan instead."""

STREAM_VERSION_INDEX = IndexModel(STREAM_ORDER, unique=True, name="stream_id_1_version_1")
"""The unique index every append relies on: inserting a taken version fails."""

# Asked of the server as the cursor's batch size so that loading many streams is one round
# trip up to the server's 16 MiB batch cap, instead of a getMore per 101 documents.
READ_BATCH_SIZE = 100_000


def event_to_document(event: StoredEvent, trace_context: str | None = None) -> dict[str, Any]:
    """The document stored for ``event`` (``_id`` is the event id).

    ``trace_context`` (a W3C ``traceparent``, or ``event.trace_context``) goes into the
    metadata, so a projection can link its work to the span that appended the event.
    """
    document = {
        "_id": event.event_id,
        "stream_id": event.stream_id,
        "stream_type": event.stream_type,
        "version": event.version,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "payload": event.payload,
        "metadata": {
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
        },
        "occurred_at": event.occurred_at,
    }
    traceparent = trace_context or event.trace_context
    if traceparent is not None:
        document["metadata"]["traceparent"] = traceparent
    return document


def event_from_document(document: Mapping[str, Any]) -> StoredEvent:
    """The :class:`StoredEvent` a stored document holds.

    Raises:
        EventDecodingError: a field is missing or malformed (``_id``, ``stream_id``,
            ``stream_type``, ``version``, ``event_type``, ``schema_version``, ``payload``,
            ``occurred_at``); the error names the stream, the version and the field.
    """
    try:
        stream_id = document["stream_id"]
        stream_type = document["stream_type"]
        version = document["version"]
        event_type = document["event_type"]
        payload = document["payload"]
        event_id = document["_id"]
        occurred_at = document["occurred_at"]
    except KeyError as missing:
        raise decoding_error(document, str(missing.args[0]), "the field is missing") from None
    schema_version = document.get("schema_version", 1)
    # Exact-type checks first: they pass for every well-formed event at the cost of a few
    # comparisons; the slower checks run only for a document that fails one.
    if (
        type(version) is not int
        or type(payload) is not dict
        or type(stream_type) is not str
        or type(event_type) is not str
        or type(schema_version) is not int
        or type(occurred_at) is not datetime
        or type(stream_id) in _NON_ID_TYPES
        or version < 1
    ):
        payload = _check_fields(document)
    metadata = document.get("metadata") or _NO_METADATA
    return stored_event(
        stream_id,
        stream_type,
        version,
        event_type,
        schema_version,
        payload,
        event_id,
        occurred_at,
        metadata.get("correlation_id"),
        metadata.get("causation_id"),
        metadata.get("traceparent"),
    )


_NON_ID_TYPES: frozenset[type[Any]] = frozenset({dict, list, tuple})


def _check_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    # The slow path of event_from_document: find the malformed field, or accept the
    # document when it only differs in type (a Mapping payload, a bool-free int subclass).
    version = document["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise decoding_error(document, "version", f"expected an int >= 1, found {version!r}")
    if isinstance(document["stream_id"], Mapping | list | tuple):
        raise decoding_error(document, "stream_id", "a stream id cannot be a document or array")
    for name in ("stream_type", "event_type"):
        if not isinstance(document[name], str):
            raise decoding_error(document, name, f"expected a string, found {document[name]!r}")
    schema_version = document.get("schema_version", 1)
    if isinstance(schema_version, bool) or not isinstance(schema_version, int):
        raise decoding_error(
            document, "schema_version", f"expected an int, found {schema_version!r}"
        )
    if not isinstance(document["occurred_at"], datetime):
        raise decoding_error(
            document, "occurred_at", f"expected a date, found {document['occurred_at']!r}"
        )
    payload = document["payload"]
    if not isinstance(payload, Mapping):
        raise decoding_error(
            document, "payload", f"expected a document, found {type(payload).__name__}"
        )
    return dict(payload)


def decoding_error(document: Mapping[str, Any], field: str, reason: str) -> EventDecodingError:
    """The :class:`EventDecodingError` for ``document``, naming what it can of the event."""
    stream_type = document.get("stream_type")
    return EventDecodingError(
        stream_type if isinstance(stream_type, str) else None,
        document.get("stream_id"),
        document.get("version"),
        field,
        reason,
    )


_NO_METADATA: Mapping[str, Any] = {}


# --- rebuilding aggregates: documents straight to domain events ------------------------------


def is_plainly_well_formed(document: Mapping[str, Any]) -> bool:
    """Whether ``document`` passes :func:`event_from_document`'s exact-type checks.

    True for every event the store writes; a document it is false for is handed to
    :func:`event_from_document`, which names its malformed field (or accepts it).
    """
    # Subscripts rather than .get: this runs for every event read, before any is decoded.
    try:
        version = document["version"]
        plain = (
            type(version) is int
            and version >= 1
            and type(document["payload"]) is dict
            and type(document["stream_type"]) is str
            and type(document["event_type"]) is str
            and type(document["occurred_at"]) is datetime
            and type(document["stream_id"]) not in _NON_ID_TYPES
            and "_id" in document
        )
    except KeyError:
        return False
    return plain and type(document.get("schema_version", 1)) is int


def document_decoder(registry: EventRegistry) -> Callable[[Mapping[str, Any]], DomainEvent]:
    """A function turning a stored document into its domain event, as
    ``registry.to_event(event_from_document(document))`` does, for a document
    :func:`event_from_document` accepts.

    No :class:`StoredEvent` is built on the way: the payload and the envelope go from the
    document into one dict and through the event class's validator, looked up once per
    stored type and schema version. A document that needs more (an unknown type, an old
    schema version to upcast) or whose payload does not validate takes the
    :class:`StoredEvent` path, so the result and the error raised are the same.
    """
    validators: dict[tuple[str, int], Callable[[dict[str, Any]], DomainEvent] | None] = {}
    to_event = registry.to_event
    validator_for = registry.validator_for

    def decode(document: Mapping[str, Any]) -> DomainEvent:
        key = (document["event_type"], document.get("schema_version", 1))
        try:
            validate = validators[key]
        except KeyError:
            validate = validators[key] = validator_for(*key)
        if validate is None:
            return to_event(event_from_document(document))
        metadata = document.get("metadata") or _NO_METADATA
        data = {
            **document["payload"],
            "event_id": document["_id"],
            "aggregate_id": document["stream_id"],
            "occurred_at": document["occurred_at"],
            "correlation_id": metadata.get("correlation_id"),
            "causation_id": metadata.get("causation_id"),
        }
        try:
            return validate(data)
        except ValidationError as exc:
            raise invalid_payload(event_from_document(document), exc) from exc

    return decode


class MongoEventStore:
    """An :class:`~cqrs_mongo.eventsourcing.ports.EventStore` over one Mongo collection.

    Every operation runs in the given unit of work's session (``session=uow.session``), so
    events commit or roll back with everything else the unit wrote.

    Args:
        database: a database handle with the package's codecs (``uow.database``).
        collection_name: the events collection.
    """

    def __init__(self, database: Any, collection_name: str = DEFAULT_EVENTS_COLLECTION) -> None:
        self.database = database
        self.collection_name = collection_name
        self.collection = database[collection_name]

    async def ensure_indexes(self) -> None:
        """Create the unique ``(stream_id, version)`` index if it is missing (idempotent)."""
        await self.collection.create_indexes([STREAM_VERSION_INDEX])

    async def append(
        self,
        stream_id: Any,
        events: Sequence[DomainEvent],
        expected_version: Expected,
        *,
        stream_type: str,
        uow: Any = None,
    ) -> list[StoredEvent]:
        """Append ``events`` after ``expected_version`` in one ``insert`` command.

        One event at an exact expected version is one document: a Mongo unit of work may
        hold it back and send it alone, without a transaction, when it is the unit's only
        operation (see ``MongoUnitOfWork.write_single``); its ``ConcurrencyError`` then comes
        from the unit's commit.

        An exact expected version ``n`` writes versions ``n+1...``; if the stream is already
        past ``n`` by any amount, inserting ``n+1`` collides on the unique index, so the check
        and the write are one operation. ``ANY`` reads the current version first (in the same
        session) and only a writer racing this very append conflicts.

        Raises:
            ConcurrencyError: the stream is not at the expected version (a duplicate key
                against committed events, or a write conflict with a concurrent transaction).
            DocumentEncodingError: a payload holds a value BSON cannot store (the field is
                named); :class:`DocumentTooLargeError` for an event over 16 MiB. In a
                transaction nothing of the append is kept.
            ValueError: ``expected_version`` is not a valid expected version.
        """
        exact = exact_version(expected_version)
        if exact is None:
            await flush_held(uow)  # the read must see what the unit wrote before
            start = await self._last_version(stream_id, session_of(uow))
        else:
            start = exact
        stored: list[StoredEvent] = []
        documents: list[dict[str, Any]] = []
        from_event = StoredEvent.from_event
        # The span appending the events (none unless a tracer observes): projections link to it.
        trace_context = current_trace_context() if observed() else None
        for offset, event in enumerate(events, start=1):
            record = from_event(event, stream_id, stream_type, start + offset)
            stored.append(record)
            documents.append(event_to_document(record, trace_context))
        if not stored:
            return []
        expected = describe(expected_version) if exact is not None else start

        # Called as write(database, session, in_transaction): a partial, not a closure, so
        # sending it is one coroutine, not two.
        write = functools.partial(self._insert, documents, expected, start)
        # One event at a known version is one document: the unit may send it alone,
        # without a transaction, when nothing else happens in it.
        single = len(documents) == 1 and exact is not None
        await send_write(write, uow, self.database, single=single)
        return stored

    async def _insert(
        self,
        documents: list[dict[str, Any]],
        expected: Any,
        start: int,
        database: Any,
        session: Any,
        in_transaction: bool,
    ) -> None:
        collection = database[self.collection_name]
        first = documents[0]
        stream_id, stream_type = first["stream_id"], first["stream_type"]
        try:
            if len(documents) == 1:
                await collection.insert_one(first, session=session)
            else:
                await collection.insert_many(documents, ordered=True, session=session)
        except ENCODING_ERRORS as exc:
            # Raised while encoding, before the batch holding the document was sent.
            raise unstorable_error(exc, stream_type, documents, "stream_id") from exc
        except PyMongoError as exc:
            if is_too_large(exc):
                raise unstorable_error(exc, stream_type, documents, "stream_id") from exc
            if not is_conflict(exc):
                raise
            actual = await self._version_after_conflict(
                collection, stream_id, start, None if in_transaction else session
            )
            raise conflict_error(exc, stream_type, stream_id, expected, actual) from exc

    async def read_stream(
        self, stream_id: Any, *, after_version: int = 0, uow: Any = None
    ) -> list[StoredEvent]:
        """The events of one stream with a version above ``after_version``, oldest first."""
        documents = await self._find_streams({stream_id: after_version}, uow)
        return [event_from_document(doc) for doc in documents]

    async def read_streams(
        self, after_versions: Mapping[Any, int], *, uow: Any = None
    ) -> dict[Any, list[StoredEvent]]:
        """For each stream id, its events above the given version, in one query.

        Streams sharing an after-version share one clause, so the filter is
        ``{$or: [{stream_id: {$in: [...]}, version: {$gt: v}}, ...]}`` with one branch per
        distinct version (one branch, no ``$or``, when there is only one); each branch is an
        index range on ``(stream_id, version)``. Results are sorted by stream id and version.
        """
        found: dict[Any, list[StoredEvent]] = defaultdict(list)
        for document in await self._find_streams(after_versions, uow):
            event = event_from_document(document)
            found[event.stream_id].append(event)
        return dict(found)

    async def read_stream_documents(
        self, after_versions: Mapping[Any, int], *, uow: Any = None
    ) -> dict[Any, list[Mapping[str, Any]]]:
        """:meth:`read_streams`, as the stored documents (for :func:`document_decoder`).

        The same query, and the same checks: a document :func:`event_from_document` refuses
        raises its :class:`EventDecodingError` here, before anything is returned.
        """
        found: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
        for document in await self._find_streams(after_versions, uow):
            if not is_plainly_well_formed(document):
                event_from_document(document)  # raises naming the field, or accepts it
            found[document["stream_id"]].append(document)
        return dict(found)

    async def _find_streams(
        self, after_versions: Mapping[Any, int], uow: Any
    ) -> list[dict[str, Any]]:
        # The one query of read_streams and read_stream_documents, sorted as they return it.
        if not after_versions:
            return []
        await flush_held(uow)  # a write the unit holds back is read too
        query = streams_filter(after_versions)
        order = _ONE_STREAM_ORDER if len(after_versions) == 1 else STREAM_ORDER
        options: dict[str, Any] = {}
        if "$or" in query:
            # Named only for an $or of index ranges (snapshots at different versions), which
            # the embedded server answers with a collection scan. Not for a plain $in: it
            # seeks the index unhinted, and its hinted path there is ~4x slower per key.
            options["hint"] = STREAM_ORDER
        cursor = self.collection.find(
            query, session=session_of(uow), batch_size=READ_BATCH_SIZE, sort=order, **options
        )
        return await driver.to_list(cursor)

    async def stream_version(self, stream_id: Any, *, uow: Any = None) -> int:
        """The version of the stream's last event (0 for a stream that does not exist)."""
        await flush_held(uow)
        return await self._last_version(stream_id, session_of(uow))

    async def _last_version(self, stream_id: Any, session: Any) -> int:
        last = await self.collection.find_one(
            {"stream_id": stream_id},
            {"version": 1, "_id": 0},
            sort=[("version", DESCENDING)],
            session=session,
        )
        return int(last["version"]) if last else 0

    async def _version_after_conflict(
        self, collection: Any, stream_id: Any, start: int, session: Any
    ) -> int | None:
        # A failed write aborts the server-side transaction, so the session cannot read any
        # more: the caller passes no session then, and the committed version is read outside
        # it. A write conflict means the rival has not committed yet; then the committed
        # version says nothing and is not reported.
        try:
            last = await collection.find_one(
                {"stream_id": stream_id},
                {"version": 1, "_id": 0},
                sort=[("version", DESCENDING)],
                session=session,
            )
        except PyMongoError:
            return None
        actual = int(last["version"]) if last else 0
        return actual if actual > start else None


# One stream (an equality on stream_id) in the same order, by its version alone: what a hand
# written load sends. mongod reads both from the (stream_id, version) index without sorting;
# a server that sorts the matches in memory (the embedded one does) sorts on one key, not two
# (measured: ~10% of a 1,000-event load's wall time).
_ONE_STREAM_ORDER = [("version", ASCENDING)]


def streams_filter(after_versions: Mapping[Any, int]) -> dict[str, Any]:
    """The filter matching, per stream, the events above its after-version.

    One stream is the plain equality ``stream_id: id`` (the tightest index bounds on every
    server; an ``$in`` of one made the embedded server scan the stream's whole range).
    Streams sharing an after-version share one ``$in`` clause, one ``$or`` branch per
    distinct version. A stream read from the start has no version clause at all: every
    event of it is read, so one whose ``version`` is missing or not a number is seen and
    refused instead of silently skipped by a ``$gt`` that cannot match it.

    Example:
        >>> streams_filter({"a": 0})
        {'stream_id': 'a'}
        >>> streams_filter({"a": 5})
        {'stream_id': 'a', 'version': {'$gt': 5}}
        >>> streams_filter({"a": 0, "b": 0})
        {'stream_id': {'$in': ['a', 'b']}}
        >>> streams_filter({"a": 0, "b": 5})["$or"][1]
        {'stream_id': 'b', 'version': {'$gt': 5}}
    """
    by_version: dict[int, list[Any]] = defaultdict(list)
    for stream_id, after in after_versions.items():
        by_version[max(after, 0)].append(stream_id)
    clauses = [_stream_clause(ids, after) for after, ids in sorted(by_version.items())]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


def _stream_clause(ids: list[Any], after: int) -> dict[str, Any]:
    clause: dict[str, Any] = {"stream_id": ids[0] if len(ids) == 1 else {"$in": ids}}
    if after > 0:
        clause["version"] = {"$gt": after}
    return clause
