"""The driver seam: the one module that knows pymongo async, Motor and mongomock-motor apart.

Everything else in the package takes a client from the user (``pymongo.AsyncMongoClient``
first; a Motor ``AsyncIOMotorClient`` or a ``mongomock_motor.AsyncMongoMockClient`` also work)
and goes through the functions here for what differs between them: how a database handle gets
the package's codec options, how sessions and transactions start and end (coroutines in pymongo
async, futures or plain calls in Motor, absent in mongomock), how an aggregation cursor is
obtained, how a cursor becomes a list, and how a bulk write runs (mongomock's ``bulk_write`` is
broken for ``UpdateOne``/``ReplaceOne`` on current pymongo, so it is never called there).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import sys
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import GeneratorType
from typing import Any, Generic, Literal, TypeVar

import pymongo
from bson import ObjectId
from pymongo import AsyncMongoClient, DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany
from pymongo import UpdateOne as UpdateOneOp
from pymongo.asynchronous import client_session as _async_session
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DocumentTooLarge
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from cqrs_mongo.errors import ConfigurationError, MongomockLimitError, TransactionError
from cqrs_mongo.mongo.codecs import (
    CLIENT_CODEC_KWARGS,
    CODEC_OPTIONS,
    MAX_DOCUMENT_BYTES,
    encoded_size,
    from_bson_values,
    to_bson_values,
)
from cqrs_mongo.mongo.monitoring import COMMAND_FORWARDER

logger = logging.getLogger("cqrs_mongo.mongo.driver")

DriverKind = Literal["pymongo", "motor", "mongomock"]


def create_client(uri: str, **kwargs: Any) -> AsyncMongoClient[dict[str, Any]]:
    """A ``pymongo.AsyncMongoClient`` with the package's codec options.

    Extra keyword arguments go to the client (they may override the codec options). The
    client also carries the package's command forwarder, which an instrumentor
    (``cqrs_mongo.otel``) subscribes to, even after the client was made; until then, and
    when no other command listener is given, pymongo builds no command events at all.
    """
    options = {**CLIENT_CODEC_KWARGS, **kwargs}
    options["event_listeners"] = [*(options.get("event_listeners") or ()), COMMAND_FORWARDER]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, **options)
    COMMAND_FORWARDER.attach(client)  # no command events built while nobody observes
    return client


def create_motor_client(uri: str, **kwargs: Any) -> Any:
    """A Motor ``AsyncIOMotorClient`` as a user would make it (no codec options).

    Raises:
        ImportError: the ``motor`` extra is not installed.
    """
    from motor.motor_asyncio import AsyncIOMotorClient

    return AsyncIOMotorClient(uri, **kwargs)


def create_mongomock_client() -> Any:
    """An in-process ``mongomock_motor.AsyncMongoMockClient`` (no sessions, no transactions).

    Raises:
        ImportError: the ``mongomock`` extra is not installed.
    """
    from mongomock_motor import AsyncMongoMockClient

    return AsyncMongoMockClient()


def driver_kind(client: Any) -> DriverKind:
    """Which driver ``client`` belongs to.

    mongomock-motor's classes pretend to be Motor's (``__class__`` is overridden), so it is
    recognised by ``isinstance`` against its own class, which looks at the real type.
    """
    mock_module = sys.modules.get("mongomock_motor")
    if mock_module is not None and isinstance(client, mock_module.AsyncMongoMockClient):
        return "mongomock"
    if type(client).__module__.startswith("motor."):
        return "motor"
    return "pymongo"


def get_database(client: Any, name: str) -> Any:
    """The database ``name`` of ``client``, decoding and encoding with the package's codecs.

    On pymongo and Motor the handle carries :data:`CODEC_OPTIONS`; mongomock supports none of
    those options, so its handle is wrapped to convert values through BSON on every call.
    """
    if driver_kind(client) == "mongomock":
        return MockDatabase(client.get_database(name))
    return client.get_database(name, codec_options=CODEC_OPTIONS)


def _awaitable(value: Any) -> bool:
    # Motor returns futures (or plain values) where pymongo async has coroutines. Looked up
    # on the type (what ``await`` uses): inspect.isawaitable falls back to an ABC check,
    # slow for the plain values (a session, None) this sees on every unit of work. A
    # generator-based coroutine has no __await__: inspect still recognises it. A plain
    # function, not a coroutine: the hot paths call it and await only what needs it.
    kind = type(value)
    return getattr(kind, "__await__", None) is not None or (
        kind is GeneratorType and inspect.isawaitable(value)
    )


async def _resolve(value: Any) -> Any:
    return await value if _awaitable(value) else value


# --- capabilities ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a deployment supports, as learned once from ``hello``.

    Attributes:
        sessions: logical sessions are available.
        transactions: multi-document transactions are available (replica set or mongos).
        topology: ``replica_set``, ``sharded``, ``standalone`` or ``mongomock``.
    """

    sessions: bool
    transactions: bool
    topology: str


V = TypeVar("V")


class _PerClient(Generic[V]):
    """Values kept per client object, by identity.

    Clients compare equal when they point at the same hosts, so a ``WeakKeyDictionary`` would
    mix up two clients; this keys by ``id`` and forgets an entry when its client is collected.
    """

    def __init__(self) -> None:
        self._items: dict[int, tuple[Any, V]] = {}

    def get(self, client: Any) -> V | None:
        entry = self._items.get(id(client))
        return None if entry is None else entry[1]

    def set(self, client: Any, value: V) -> None:
        key = id(client)
        try:
            ref: Any = weakref.ref(client, lambda _: self._items.pop(key, None))
        except TypeError:  # not weakly referenceable: keep it alive with its entry
            ref = client
        self._items[key] = (ref, value)

    def pop(self, client: Any) -> None:
        self._items.pop(id(client), None)


_capabilities: _PerClient[Capabilities] = _PerClient()
_probes: _PerClient[asyncio.Future[Capabilities]] = _PerClient()
_warned: _PerClient[bool] = _PerClient()


def first_time(client: Any) -> bool:
    """``True`` the first time it is asked about ``client`` (for once-per-client warnings)."""
    if _warned.get(client):
        return False
    _warned.set(client, True)
    return True


known_capabilities = _capabilities.get
"""``known_capabilities(client)``: what :func:`capabilities` learned of ``client``, or ``None``
before it has asked (the store's own lookup, asked on every unit of work)."""


async def capabilities(client: Any) -> Capabilities:
    """What ``client``'s deployment supports; asked of the server once per client.

    Concurrent first callers share one ``hello``. Transactions need a replica set (``setName``
    in the reply) or mongos (``msg: "isdbgrid"``); ``replSetGetStatus`` is avoided because
    mongos and least-privilege users cannot run it.
    """
    known = _capabilities.get(client)
    if known is not None:
        return known
    probe = _probes.get(client)
    if probe is None:
        probe = asyncio.ensure_future(_probe(client))
        _probes.set(client, probe)
    try:
        found = await asyncio.shield(probe)
    finally:
        if probe.done():
            _probes.pop(client)
    _capabilities.set(client, found)
    return found


async def _probe(client: Any) -> Capabilities:
    if driver_kind(client) == "mongomock":
        return Capabilities(sessions=False, transactions=False, topology="mongomock")
    hello = await client.admin.command("hello")
    sessions = hello.get("logicalSessionTimeoutMinutes") is not None
    if hello.get("msg") == "isdbgrid":
        return Capabilities(sessions=sessions, transactions=sessions, topology="sharded")
    if hello.get("setName"):
        return Capabilities(sessions=sessions, transactions=sessions, topology="replica_set")
    return Capabilities(sessions=sessions, transactions=False, topology="standalone")


# --- sessions and transactions --------------------------------------------------------------


async def start_session(client: Any, caps: Capabilities | None = None) -> Any | None:
    """A new session on ``client``, or ``None`` where the deployment has no sessions.

    ``caps`` is what :func:`capabilities` said of ``client``, when the caller has it.
    """
    if not (caps or await capabilities(client)).sessions:
        return None
    session = client.start_session()
    return await session if _awaitable(session) else session


async def end_session(session: Any | None) -> None:
    """End ``session`` (ending it aborts any transaction still open on it)."""
    if session is not None:
        ending = session.end_session()
        if _awaitable(ending):
            await ending


MAJORITY = WriteConcern("majority")
"""The write concern of the package's transactions and lone writes unless told otherwise."""


@functools.cache
def _read_concern(level: str | None) -> ReadConcern | None:
    # Read concerns are immutable: one per level, not one per transaction.
    return ReadConcern(level) if level else None


async def start_transaction(
    session: Any,
    *,
    read_concern: str | None = "snapshot",
    write_concern: WriteConcern | None = None,
    max_commit_time_ms: int | None = None,
) -> None:
    """Start a transaction on ``session``: majority writes, primary reads, ``read_concern``."""
    started = _start(session, read_concern, write_concern, max_commit_time_ms)
    if _awaitable(started):
        await started


def _start(
    session: Any,
    read_concern: str | None,
    write_concern: WriteConcern | None,
    max_commit_time_ms: int | None = None,
) -> Any:
    # The driver's start_transaction with the package's options: what it returns (Motor:
    # nothing; pymongo async: a coroutine still to run).
    return session.start_transaction(
        read_concern=_read_concern(read_concern),
        write_concern=write_concern or MAJORITY,
        read_preference=ReadPreference.PRIMARY,
        max_commit_time_ms=max_commit_time_ms,
    )


def start_transaction_now(
    session: Any,
    *,
    read_concern: str | None = "snapshot",
    write_concern: WriteConcern | None = None,
) -> None:
    """:func:`start_transaction`, done before returning: for code that cannot await.

    Starting a transaction is client-side bookkeeping (the first statement tells the server).
    Motor's ``start_transaction`` is synchronous; pymongo's async one is a coroutine that
    awaits only the release of a connection pinned by an earlier transaction on a sharded
    cluster (``AsyncClientSession._transaction.reset``), which a session that has run no
    transaction does not hold, so it finishes at its first step, and is run to that end here.

    Raises:
        TransactionError: the driver's ``start_transaction`` had to wait (the session is not
            fresh, or a driver release changed it): the transaction is not started.
    """
    started = _start(session, read_concern, write_concern)
    send = getattr(started, "send", None)
    if send is None:  # Motor: already started
        return
    try:
        send(None)
    except StopIteration:
        return
    started.close()
    raise TransactionError(
        "The driver could not start the unit's transaction without waiting; the unit's "
        "statements would run outside it, so none is sent."
    )


async def commit_transaction(session: Any, *, deadline_seconds: float | None = None) -> None:
    """Send ``commitTransaction`` (pymongo retries it once itself after a retryable error).

    ``deadline_seconds`` is a deadline kept by the driver's own timeout machinery
    (``pymongo.timeout``): server selection, the retry and the reply all fit in it, and the
    server is sent the remainder as ``maxTimeMS``. Motor runs pymongo in threads with a copy
    of the caller's context, so the deadline holds there too.
    """
    with deadline(deadline_seconds):
        # Motor copies the context when the call is made, inside the deadline.
        pending = session.commit_transaction()
        await _resolve(pending)


async def abort_transaction(session: Any, *, deadline_seconds: float | None = None) -> None:
    """Send ``abortTransaction``; the driver ignores server errors on abort, as the spec says."""
    with deadline(deadline_seconds):
        pending = session.abort_transaction()
        await _resolve(pending)


async def drop_untouched_transaction(session: Any) -> None:
    """End a transaction that has sent nothing (see :func:`transaction_is_untouched`).

    The driver ends it client-side: no command, so no deadline to keep.
    """
    aborted = session.abort_transaction()
    if _awaitable(aborted):
        await aborted


def cancellable(session: Any) -> bool:
    """Whether cancelling the task awaiting an operation of ``session`` stops the operation.

    pymongo's async driver runs in the event loop: a cancelled operation closes its
    connection and is over. Motor runs the synchronous driver in a thread, which goes on
    with the operation (and the session) after the awaiting task is cancelled.
    """
    return type(session) is AsyncClientSession


# pymongo's async connect (pool_shared._async_create_connection) closes the socket it opens
# on its own timeout or an OSError, not on a cancellation: a task cancelled while connecting
# leaves the socket to the garbage collector.
_CONNECTING = frozenset({"_async_create_connection"})


def opening_connection(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` is, right now, opening a connection of the driver's.

    Such a step must not be cancelled (see above); it is bounded by the client's
    ``connectTimeoutMS`` (or its own deadline). ``False`` for a driver whose connect has
    another name: a cancellation is then sent as soon as it is due.
    """
    # The chain of awaits the task is suspended in, innermost last (Task.get_stack gives only
    # the outermost coroutine's frame of a suspended task).
    awaiting: Any = task.get_coro()
    while awaiting is not None:
        frame = getattr(awaiting, "cr_frame", None) or getattr(awaiting, "gi_frame", None)
        if frame is not None and frame.f_code.co_name in _CONNECTING:
            return True
        awaiting = getattr(awaiting, "cr_await", None) or getattr(awaiting, "gi_yieldfrom", None)
    return False


def deadline(seconds: float | None) -> contextlib.AbstractContextManager[Any]:
    """A driver deadline of ``seconds`` for the block (``None``: no new deadline).

    ``pymongo.timeout(None)`` would lift an enclosing deadline; this never does.
    """
    return contextlib.nullcontext() if seconds is None else pymongo.timeout(seconds)


def client_timeout(client: Any) -> float | None:
    """The client's own ``timeoutMS`` in seconds, or ``None`` (mongomock has none)."""
    options = getattr(client, "options", None)
    value = getattr(options, "timeout", None)
    return float(value) if isinstance(value, int | float) and value > 0 else None


def shortest(*seconds: float | None) -> float | None:
    """The smallest of the given limits, ignoring ``None`` (``None`` if all are)."""
    found = None
    for limit in seconds:
        if limit is not None and (found is None or limit < found):
            found = limit
    return found


FENCE_COLLECTION = "cqrs_mongo_fence"
"""The (never written) collection a fence reads; any name would do, none is created."""


async def fence_transaction(session: Any, database: Any, *, deadline_seconds: float) -> bool:
    """End, on the server, whatever transaction ``session`` may still have open there.

    After a write or a commit whose outcome is unknown (a timeout, a dropped connection) the
    server may still hold the transaction, or may not even have *started* it yet (a command
    delayed on its way in). An ``abortTransaction`` for that transaction number can arrive
    first and find nothing. A new transaction on the same session can: its first statement
    makes the server abort any older open transaction of the session and refuse, with
    ``TransactionTooOld``, a statement or commit of the older one that arrives later. This
    runs that statement (a ``find`` reading nothing) and aborts the new transaction.

    Returns:
        Whether the fence reached the server; errors are logged, never raised.
    """
    try:
        with pymongo.timeout(deadline_seconds):
            if session.in_transaction:
                # The driver allows one transaction at a time on a session: end this one
                # here first (its abort may miss, which is what the fence is for).
                await _resolve(session.abort_transaction())
            await _resolve(
                session.start_transaction(
                    read_concern=ReadConcern("local"),
                    write_concern=WriteConcern("majority"),
                    read_preference=ReadPreference.PRIMARY,
                )
            )
            await database[FENCE_COLLECTION].find_one({}, session=session)
            await _resolve(session.abort_transaction())
    except Exception as exc:
        logger.warning("Could not fence the session's transaction on the server: %r", exc)
        with contextlib.suppress(Exception):
            if session.in_transaction:
                await _resolve(session.abort_transaction())
        return False
    return True


# pymongo's client-side transaction state "started, no statement sent yet": the same value in
# its async API and in the synchronous one Motor wraps (older pymongo releases have one copy of
# the class per API, newer ones share one).
_TXN_STARTING: int = getattr(_async_session, "_TxnState").STARTING  # noqa: B009 - private


def transaction_is_untouched(session: Any) -> bool:
    """Whether ``session``'s transaction is started client-side but has sent no statement.

    pymongo (and Motor's pymongo underneath) keeps such a transaction in its ``STARTING``
    state: aborting it sends nothing, and nothing of it exists on the server. ``False``
    when the state cannot be read (a driver without it): the transaction is then used.
    """
    inner = getattr(session, "delegate", session)
    state = getattr(getattr(inner, "_transaction", None), "state", None)
    return state is not None and state == _TXN_STARTING


def mark_session_dirty(session: Any) -> None:
    """Keep ``session``'s server session out of the driver's pool once it ends.

    Used when the session's transaction state on the server is in doubt; pymongo does the
    same on network errors. Best effort: a driver without the hook is left alone.
    """
    server_session = getattr(session, "_server_session", None)
    mark = getattr(server_session, "mark_dirty", None)
    if callable(mark):
        mark()


def session_is_dirty(session: Any) -> bool:
    """Whether the driver saw a network error on ``session`` (its server state is in doubt)."""
    server_session = getattr(session, "_server_session", None)
    return bool(getattr(server_session, "dirty", False))


# --- cursors --------------------------------------------------------------------------------


async def to_list(cursor: Any) -> list[dict[str, Any]]:
    """Every document of ``cursor``, fetched in the driver's batches."""
    documents: list[dict[str, Any]] = await cursor.to_list(None)
    return documents


async def aggregate(
    collection: Any, pipeline: Sequence[Mapping[str, Any]], *, session: Any | None, **kwargs: Any
) -> Any:
    """An aggregation cursor (pymongo async awaits ``aggregate``; Motor and mongomock do not)."""
    return await _resolve(collection.aggregate(list(pipeline), session=session, **kwargs))


async def close_cursor(cursor: Any) -> None:
    """Close ``cursor`` (killing it on the server if it was not exhausted)."""
    await _resolve(cursor.close())


# --- bulk writes ----------------------------------------------------------------------------

WriteOp = InsertOne[Any] | UpdateOneOp | UpdateMany | ReplaceOne[Any] | DeleteOne | DeleteMany


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What a bulk write did, the same whichever driver ran it.

    Attributes:
        inserted: documents inserted.
        matched: documents matched by updates and replacements.
        modified: documents changed by updates and replacements.
        deleted: documents deleted.
        upserted: documents inserted by upserts.
        fallback: whether the operations ran one by one (mongomock) instead of one command.
    """

    inserted: int = 0
    matched: int = 0
    modified: int = 0
    deleted: int = 0
    upserted: int = 0
    fallback: bool = False


async def bulk_write(
    collection: Any, operations: Sequence[WriteOp], *, session: Any | None, ordered: bool = True
) -> BulkOutcome:
    """Run ``operations`` on ``collection`` in ``session``, as one ``bulk_write`` command.

    On mongomock the operations run one by one, in order, with the same session (``None``),
    because its ``bulk_write`` mishandles ``UpdateOne`` and ``ReplaceOne``.
    """
    if not operations:
        return BulkOutcome()
    if isinstance(collection, MockCollection):
        return await _bulk_write_one_by_one(collection, operations)
    result = await collection.bulk_write(list(operations), ordered=ordered, session=session)
    return BulkOutcome(
        inserted=result.inserted_count,
        matched=result.matched_count,
        modified=result.modified_count,
        deleted=result.deleted_count,
        upserted=result.upserted_count,
    )


async def _bulk_write_one_by_one(collection: Any, operations: Sequence[WriteOp]) -> BulkOutcome:
    counts = dict.fromkeys(("inserted", "matched", "modified", "deleted", "upserted"), 0)
    for op in operations:
        if isinstance(op, InsertOne):
            await collection.insert_one(op._doc)
            counts["inserted"] += 1
            continue
        if isinstance(op, DeleteOne | DeleteMany):
            delete = collection.delete_one if isinstance(op, DeleteOne) else collection.delete_many
            counts["deleted"] += (await delete(op._filter)).deleted_count
            continue
        if isinstance(op, ReplaceOne):
            result = await collection.replace_one(op._filter, op._doc, upsert=bool(op._upsert))
        elif isinstance(op, UpdateOneOp):
            result = await collection.update_one(op._filter, op._doc, upsert=bool(op._upsert))
        else:
            result = await collection.update_many(op._filter, op._doc, upsert=bool(op._upsert))
        counts["matched"] += result.matched_count
        counts["modified"] += result.modified_count
        counts["upserted"] += 1 if result.upserted_id is not None else 0
    return BulkOutcome(**counts, fallback=True)


# --- mongomock: codecs by hand --------------------------------------------------------------

_ENCODED_KWARGS = frozenset(
    {"filter", "update", "replacement", "document", "documents", "pipeline"}
)


def _encode_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    for key in _ENCODED_KWARGS.intersection(kwargs):
        kwargs[key] = to_bson_values(kwargs[key])
    return tuple(to_bson_values(a) if _is_document_like(a) else a for a in args)


def _is_document_like(value: Any) -> bool:
    # Filters, documents and pipelines; not index models or sort specifications.
    if isinstance(value, Mapping):
        return True
    return isinstance(value, list) and all(isinstance(item, Mapping) for item in value)


def _decode(result: Any) -> Any:
    if isinstance(result, Mapping):
        return from_bson_values(result)
    if isinstance(result, list) and all(isinstance(item, Mapping) for item in result):
        return [from_bson_values(item) for item in result]
    return result


def _within_limit(document: Mapping[str, Any]) -> Any:
    # mongomock stores anything; a server refuses a document over BSON's 16 MiB, and tests
    # run on mongomock should meet the same refusal.
    if encoded_size(document) > MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge("BSON document too large: over the 16 MiB limit.")
    return to_bson_values(document)


class MockDatabase:
    """A mongomock database whose collections convert values as a server's codecs would."""

    def __init__(self, database: Any) -> None:
        self.delegate = database
        self.name: str = database.name

    def __getitem__(self, name: str) -> MockCollection:
        return MockCollection(self.delegate[name], self)

    def get_collection(self, name: str) -> MockCollection:
        """The collection ``name``."""
        return self[name]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.delegate, name)


class MockCollection:
    """A mongomock-motor collection taking and returning the package's Python types.

    Filters, documents, updates and pipelines are converted to BSON types on the way in and
    results back on the way out; anything not listed here is passed through the same way.
    """

    def __init__(self, collection: Any, database: MockDatabase) -> None:
        self.delegate = collection
        self.database = database
        self.name: str = collection.name

    def find(self, *args: Any, **kwargs: Any) -> MockCursor:
        """A cursor over the matching documents (mongomock ignores ``batch_size``).

        ``hint`` is dropped: mongomock has no query planner to steer, and refuses the field.
        """
        kwargs.pop("hint", None)
        with _mongomock_limits("find"):
            return MockCursor(self.delegate.find(*_encode_args(args, kwargs), **kwargs))

    def aggregate(self, *args: Any, **kwargs: Any) -> MockCursor:
        """A cursor over the pipeline's output."""
        with _mongomock_limits("aggregate"):
            return MockCursor(self.delegate.aggregate(*_encode_args(args, kwargs), **kwargs))

    async def insert_one(self, document: dict[str, Any], **kwargs: Any) -> Any:
        """Insert ``document``, giving it an ``_id`` first as pymongo does.

        Raises:
            pymongo.errors.DocumentTooLarge: it exceeds 16 MiB, as a server would refuse it.
        """
        document.setdefault("_id", ObjectId())
        return await self.delegate.insert_one(_within_limit(document), **kwargs)

    async def insert_many(self, documents: Sequence[dict[str, Any]], **kwargs: Any) -> Any:
        """Insert ``documents``, giving each an ``_id`` first as pymongo does.

        Raises:
            pymongo.errors.DocumentTooLarge: one exceeds 16 MiB (none is inserted).
        """
        for document in documents:
            document.setdefault("_id", ObjectId())
        converted = [_within_limit(d) for d in documents]
        return await self.delegate.insert_many(converted, **kwargs)

    async def replace_one(
        self, filter: Mapping[str, Any], replacement: dict[str, Any], **kwargs: Any
    ) -> Any:
        """Replace the document matching ``filter``.

        Raises:
            pymongo.errors.DocumentTooLarge: ``replacement`` exceeds 16 MiB.
        """
        return await self.delegate.replace_one(
            to_bson_values(filter), _within_limit(replacement), **kwargs
        )

    async def bulk_write(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: mongomock's ``bulk_write`` is broken; use :func:`bulk_write` of this module.

        Raises:
            ConfigurationError: always.
        """
        raise ConfigurationError(
            "mongomock cannot run bulk_write; call cqrs_mongo.mongo.driver.bulk_write instead."
        )

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.delegate, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            with _mongomock_limits(name):
                result = method(*_encode_args(args, kwargs), **kwargs)
                if inspect.isawaitable(result):
                    result = await result
            return _decode(result)

        return call


class MockCursor:
    """A mongomock-motor cursor whose documents come back with the package's Python types."""

    def __init__(self, cursor: Any) -> None:
        self.delegate = cursor

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.delegate, name)

        def chain(*args: Any, **kwargs: Any) -> MockCursor:
            method(*args, **kwargs)
            return self

        # sort, skip, limit, batch_size... return the cursor itself, as pymongo's do.
        return chain

    def __aiter__(self) -> MockCursor:
        return self

    async def close(self) -> None:
        """Close the cursor."""
        await self.delegate.close()

    async def __anext__(self) -> dict[str, Any]:
        with _mongomock_limits("query"):
            document = await self.delegate.__anext__()
        return from_bson_values(document)

    async def to_list(self, length: int | None = None) -> list[dict[str, Any]]:
        """Every remaining document (or the next ``length``)."""
        with _mongomock_limits("query"):
            documents = await self.delegate.to_list(length)
        return [from_bson_values(d) for d in documents]


@contextmanager
def _mongomock_limits(operation: str) -> Iterator[None]:
    """Turn mongomock's own failures on what it does not implement into one clear error.

    mongomock raises ``NotImplementedError`` for what it knows it lacks (comparing
    Decimal128 values, several ``$type`` aliases) and a bare ``TypeError`` for ``$type``
    with a list, both from deep inside its matcher.
    """
    try:
        yield
    except (NotImplementedError, TypeError) as exc:
        text = str(exc)
        if "Decimal128" in text:
            limit = "cannot compare Decimal values (ranges and sorts over Decimal fields)"
        elif "$type" in text or "unhashable type: 'list'" in text:
            limit = "cannot evaluate the $type conditions that keyset (cursor) pages use"
        else:
            limit = f"cannot run this {operation} ({type(exc).__name__}: {text})"
        raise MongomockLimitError(
            f"mongomock {limit}; run this test on the embedded server "
            "(cqrs_mongo.testing.EmbeddedMongoServer, the mongo_db fixture) or a real MongoDB."
        ) from exc
