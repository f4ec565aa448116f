"""The projections' event feed: a catch-up read of the events collection, then its change stream.

Why not poll a global counter: a transaction that took sequence number 7 may commit after the
one that took 8; a poller that has seen 8 moves past 7 for ever. Change streams have no such
hole: they report committed writes in commit (oplog) order, and a resume token names a place
in that order. So a feed position is either

* **catch-up**: the cluster time ``start_at`` taken (by a majority read) *before* the catch-up
  read began, plus the last ``(stream_id, version)`` read. The catch-up read walks the events
  collection in ``(stream_id, version)`` order (the unique index), so each stream comes in
  version order, and resumes after a crash from the last key read (while one batch is
  applied the next is already being read: a read ahead, used only by the read that goes on
  from exactly that batch's end); or
* **streaming**: the change stream, resumed after the token of the last event handed out, or
  started at ``start_at`` when the catch-up read has just ended. Starting at ``start_at``
  (inclusive) overlaps the catch-up read instead of leaving a gap; the projection store's
  per-stream version guard turns the overlap into no-ops.

A stored token that has fallen out of the oplog raises :class:`FeedHistoryLost`; the worker
then starts a new catch-up read (see the worker), and the per-stream positions skip what it
already applied.

A stored event that cannot be decoded (a field missing or of the wrong type) does not stop the
feed: it comes out as a :class:`FeedItem` whose ``undecodable`` names the reason, carrying the
raw document, and the worker parks it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId, Timestamp
from pymongo.errors import OperationFailure
from pymongo.read_concern import ReadConcern

from cqrs_mongo.errors import ProjectionError
from cqrs_mongo.eventsourcing import StoredEvent
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.eventsourcing.event_store import (
    DEFAULT_EVENTS_COLLECTION,
    STREAM_ORDER,
    event_from_document,
)

# InvalidResumeToken, ChangeStreamFatalError ("resume token was not found"), and
# ChangeStreamHistoryLost: the position is no longer in the oplog.
HISTORY_LOST_CODES = frozenset({260, 280, 286})

# BSON's comparison order of the type brackets a stream id may belong to ($gt only compares
# within one bracket, so the catch-up keyset must name the later brackets explicitly).
_BRACKETS = (
    "null",
    "number",
    "string",
    "object",
    "array",
    "binData",
    "objectId",
    "bool",
    "date",
)


# Stream id types the fast path of decode_event takes without undecodable_reason's checks
# (None, documents and arrays are among those it names).
_SCALAR_STREAM_IDS: frozenset[type[Any]] = frozenset(
    {str, int, float, uuid.UUID, ObjectId, bytes, datetime}
)


class FeedHistoryLost(ProjectionError):
    """The feed position is older than the change stream can resume from."""


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """Where a projection is in the event feed; stored as its checkpoint.

    Attributes:
        start_at: the cluster time read before the catch-up read began.
        after: during catch-up, the last ``(stream_id, version)`` read.
        resume_token: while streaming, the token after the last event handed out.
        streaming: whether the catch-up read is over.
        fresh: during catch-up, whether the round started with no stored positions (a first
            build or a rebuild): then no stream after ``after`` has a position yet.
    """

    start_at: Timestamp
    after: tuple[Any, int] | None = None
    resume_token: Mapping[str, Any] | None = None
    streaming: bool = False
    fresh: bool = False

    def to_document(self) -> dict[str, Any]:
        """The checkpoint document body for this position."""
        after = (
            None if self.after is None else {"stream_id": self.after[0], "version": self.after[1]}
        )
        return {
            "start_at": self.start_at,
            "after": after,
            "resume_token": self.resume_token,
            "streaming": self.streaming,
            "fresh": self.fresh,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> FeedPosition:
        """The position a checkpoint document stores."""
        after = document.get("after")
        return cls(
            start_at=document["start_at"],
            after=None if after is None else (after["stream_id"], after["version"]),
            resume_token=document.get("resume_token"),
            streaming=bool(document.get("streaming")),
            fresh=bool(document.get("fresh")),
        )


class FeedItem:
    """One event from the feed, with the position just after it.

    Attributes:
        event: the stored event.
        position: the feed position after this event (its checkpoint once applied).
        cluster_time: the commit's cluster time (streaming only).
        committed_at: the commit's wall-clock time (streaming only).
        undecodable: why the stored document could not be decoded (``event`` is then a
            stand-in holding what could be read: stream id, version, type).
        raw: the stored document, for an undecodable event.

    Read-only by convention. A catch-up item builds its position only when asked (see
    :meth:`caught_up`): a batch asks for one or two of them, the read makes one per event.
    """

    __slots__ = (
        "_base",
        "_position",
        "cluster_time",
        "committed_at",
        "event",
        "raw",
        "undecodable",
    )

    def __init__(
        self,
        event: StoredEvent,
        position: FeedPosition | None,
        cluster_time: Timestamp | None = None,
        committed_at: datetime | None = None,
        undecodable: str | None = None,
        raw: Mapping[str, Any] | None = None,
        base: FeedPosition | None = None,
    ) -> None:
        if position is None and (base is None or raw is None):
            raise ValueError("A feed item needs its position, or the base and raw to build it.")
        self.event = event
        self._position = position
        self._base = base  # with raw, what a position left to build is made from
        self.cluster_time = cluster_time
        self.committed_at = committed_at
        self.undecodable = undecodable
        self.raw = raw

    @classmethod
    def caught_up(
        cls,
        event: StoredEvent,
        undecodable: str | None,
        base: FeedPosition,
        raw: Mapping[str, Any],
    ) -> FeedItem:
        """A catch-up item: its position is ``base`` moved past ``raw``'s stored
        ``(stream_id, version)`` (the keyset goes on from the stored values, decodable or
        not), built when first asked for."""
        return cls(event, None, None, None, undecodable, raw, base)

    @property
    def position(self) -> FeedPosition:
        """The feed position after this event (its checkpoint once applied)."""
        position = self._position
        if position is None:
            base, raw = self._base, self.raw
            assert base is not None  # __init__ refused an item without them
            assert raw is not None
            position = self._position = FeedPosition(
                start_at=base.start_at,
                after=(raw.get("stream_id"), raw.get("version")),  # type: ignore[arg-type]
                fresh=base.fresh,
            )
        return position

    def __repr__(self) -> str:
        return f"FeedItem({self.event!r}, {self.position!r}, undecodable={self.undecodable!r})"


def decode_event(document: Mapping[str, Any]) -> tuple[StoredEvent, str | None]:
    """The event a stored document holds, or a stand-in and the reason it cannot be decoded.

    The stand-in keeps the stream id and version when they are usable (version 0 when not,
    which holds every later event of the stream behind it).
    """
    if type(document.get("stream_id")) in _SCALAR_STREAM_IDS:
        # Nearly every event read: a document event_from_document accepts, with a scalar
        # stream id, has nothing undecodable_reason looks for, so its checks are not run.
        try:
            return event_from_document(document), None
        except Exception:  # the checked path below names what is wrong
            pass
    reason = undecodable_reason(document)
    if reason is None:
        try:
            return event_from_document(document), None
        except Exception as exc:  # any failure to decode parks the event, with its reason
            reason = f"stored event cannot be decoded: {type(exc).__name__}: {exc}"
    version = document.get("version")
    usable = isinstance(version, int) and not isinstance(version, bool) and version >= 1
    event_id = document.get("_id")
    return (
        StoredEvent(
            stream_id=document.get("stream_id"),
            stream_type=str(document.get("stream_type", "")),
            version=int(version) if usable else 0,  # type: ignore[arg-type]
            event_type=str(document.get("event_type", "")),
            schema_version=1,
            payload={},
            event_id=event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(int=0),
            occurred_at=datetime.now(UTC),
        ),
        reason,
    )


def undecodable_reason(document: Mapping[str, Any]) -> str | None:
    """Why ``document`` is not a decodable stored event, or ``None`` when it is."""
    for name in ("stream_id", "stream_type", "version", "event_type", "occurred_at"):
        if name not in document or document[name] is None:
            return f"stored event has no {name!r}"
    if isinstance(document["stream_id"], Mapping | list):
        return f"stored event's 'stream_id' is a {type(document['stream_id']).__name__}"
    version = document["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return f"stored event's 'version' is {version!r}, expected an integer from 1"
    if not isinstance(document["occurred_at"], datetime):
        return f"stored event's 'occurred_at' is a {type(document['occurred_at']).__name__}"
    payload = document.get("payload")
    if payload is not None and not isinstance(payload, Mapping):
        return f"stored event's 'payload' is a {type(payload).__name__}, expected a document"
    return None


class MongoEventFeed:
    """Reads committed events in order for one projection, from any feed position.

    One change stream is kept open between reads while positions follow on from each other;
    it is reopened when asked for another position. Not safe for concurrent use.

    Args:
        database: the database holding the events collection (with the package's codecs).
        collection_name: the events collection.
        event_types: only events of these types are read (``None``: all).
        max_await_ms: how long one read waits on the change stream for new events.
    """

    def __init__(
        self,
        database: Any,
        collection_name: str = DEFAULT_EVENTS_COLLECTION,
        *,
        event_types: Collection[str] | None = None,
        max_await_ms: int = 100,
    ) -> None:
        self.database = database
        self.collection = database[collection_name]
        self.event_types = None if event_types is None else sorted(event_types)
        self.max_await_ms = max_await_ms
        self._stream: Any = None
        self._stream_position: FeedPosition | None = None
        self._catch_up_queries: list[dict[str, Any]] = []
        self._catch_up_cursor: Any = None
        self._catch_up_position: FeedPosition | None = None
        # The next batch of the catch-up cursor, being read while the last one is applied.
        self._ahead: asyncio.Task[list[FeedItem]] | None = None
        self._ahead_limit: int | None = None

    async def cluster_time(self) -> Timestamp:
        """The cluster time of a majority read of the events collection, taken now.

        Every event committed at or before it is visible to later majority reads.

        Raises:
            ProjectionError: the deployment has no sessions (so no change streams either).
        """
        session = await driver.start_session(self.database.client)
        if session is None:
            raise ProjectionError(
                "The event feed needs change streams: expected a replica set or sharded "
                "cluster, found a deployment without sessions."
            )
        try:
            majority = self.collection.with_options(read_concern=ReadConcern("majority"))
            await majority.find_one({}, {"_id": 1}, session=session)
            operation_time: Timestamp = session.operation_time
        finally:
            await driver.end_session(session)
        return operation_time

    async def origin(self, *, fresh: bool = False) -> FeedPosition:
        """The position of a projection starting from zero: a catch-up read from the start.

        ``fresh`` says no position of the projection is stored (see :class:`FeedPosition`).
        """
        return FeedPosition(start_at=await self.cluster_time(), fresh=fresh)

    async def read(
        self, position: FeedPosition, limit: int, *, covers: Timestamp | None = None
    ) -> tuple[list[FeedItem], FeedPosition]:
        """Up to ``limit`` events after ``position``, and the position after them.

        During catch-up this is one cursor over the events index; once it is exhausted the
        feed moves on to the change stream (the returned position says so even when no
        event came). With ``covers``, a catch-up read that began at or after that cluster
        time has read every event committed by it when it ends, so the change stream is not
        opened then: no items, and the streaming position to go on from.

        Raises:
            FeedHistoryLost: the change stream cannot resume from ``position``.
        """
        if not position.streaming:
            items = await self._catch_up(position, limit)
            if items:
                return items, items[-1].position
            position = FeedPosition(start_at=position.start_at, streaming=True)
            if covers is not None and position.start_at >= covers:
                return [], position
        items = await self._read_stream(position, limit)
        return items, self._stream_position or position

    async def pending(
        self, position: FeedPosition, cap: int = 10_000
    ) -> tuple[int, datetime | None, bool]:
        """How many events follow ``position`` (up to ``cap``), when the oldest was committed,
        and whether the count stopped at the cap.

        Raises:
            FeedHistoryLost: the change stream cannot resume from ``position``.
        """
        if not position.streaming:
            count, oldest = 0, None
            for query in self._catch_up_filters(position):
                if count >= cap:
                    break
                found = await self.collection.count_documents(
                    query, limit=cap - count, hint=STREAM_ORDER
                )
                if found and oldest is None:
                    first = await self.collection.find_one(
                        query, sort=STREAM_ORDER, hint=STREAM_ORDER
                    )
                    oldest = None if first is None else first["occurred_at"]
                count += found
            return count, oldest, count >= cap
        stream = await self._open(position, max_await_ms=10)
        count, oldest = 0, None
        try:
            while count < cap and (change := await _next_change(stream)) is not None:
                count += 1
                oldest = oldest or change.get("wallTime") or change["fullDocument"]["occurred_at"]
        finally:
            await stream.close()
        return count, oldest, count >= cap

    async def close(self) -> None:
        """Close the open catch-up cursor and change stream, if any."""
        await self._close_catch_up()
        stream, self._stream, self._stream_position = self._stream, None, None
        if stream is not None:
            await stream.close()

    # --- catch-up ------------------------------------------------------------------------

    async def _catch_up(self, position: FeedPosition, limit: int) -> list[FeedItem]:
        # One cursor walks the events index across batches, as a hand-written loop would
        # (a find, then a getMore per batch); the keyset query is sent again only for a
        # position this feed did not hand out last (a restart, a takeover, a failure).
        if self._catch_up_position is not position or (
            self._ahead is not None and self._ahead_limit != limit
        ):
            await self._close_catch_up()
            self._catch_up_queries = self._catch_up_filters(position)
        items: list[FeedItem] = []
        try:
            ahead, self._ahead = self._ahead, None
            if ahead is not None:
                items = await ahead
                if len(items) < limit:  # the read ahead reached the end of its range
                    await self._end_of_range()
            while len(items) < limit and self._catch_up_queries:
                if self._catch_up_cursor is None:
                    majority = self.collection.with_options(read_concern=ReadConcern("majority"))
                    self._catch_up_cursor = majority.find(
                        self._catch_up_queries[0],
                        sort=STREAM_ORDER,
                        hint=STREAM_ORDER,
                        batch_size=limit,
                    )
                wanted = limit - len(items)
                documents = await self._catch_up_cursor.to_list(wanted)
                items += _caught_up(documents, position)
                if len(documents) < wanted:  # this range of the keyset is exhausted
                    await self._end_of_range()
        except BaseException:
            await self._close_catch_up()
            raise
        if not items:
            await self._close_catch_up()
            return items
        last = self._catch_up_position = items[-1].position
        cursor = self._catch_up_cursor
        if cursor is not None:
            # Read the next batch while the caller applies this one: its getMore and the
            # decoding of its reply overlap the batch's writes instead of following them.
            # Only a read that goes on from exactly this batch's end uses it.
            self._ahead = asyncio.create_task(_read_ahead(cursor, limit, last))
            self._ahead_limit = limit
        return items

    async def _end_of_range(self) -> None:
        # The open cursor's range of the keyset is read to its end: the next range follows.
        cursor, self._catch_up_cursor = self._catch_up_cursor, None
        self._catch_up_queries.pop(0)
        if cursor is not None:
            await cursor.close()

    async def _close_catch_up(self) -> None:
        cursor, self._catch_up_cursor = self._catch_up_cursor, None
        self._catch_up_queries, self._catch_up_position = [], None
        ahead, self._ahead, self._ahead_limit = self._ahead, None, None
        try:
            if ahead is not None:
                await _discard(ahead)
        finally:
            if cursor is not None:
                await cursor.close()

    def _catch_up_filters(self, position: FeedPosition) -> list[dict[str, Any]]:
        """The catch-up keyset after ``position`` as a chain of index ranges, read in turn.

        Each is one range of the ``(stream_id, version)`` index, so both mongod and the
        embedded server walk the index in order (no ``$or`` of ranges, which a planner may
        answer with a collection scan); the hint names that index. Event types are filtered
        on the fetched documents.
        """
        keysets: list[dict[str, Any]] = (
            [{}] if position.after is None else _after_filters(*position.after)
        )
        if self.event_types is None:
            return keysets
        return [{**keyset, "event_type": {"$in": self.event_types}} for keyset in keysets]

    # --- change stream -------------------------------------------------------------------

    async def _read_stream(self, position: FeedPosition, limit: int) -> list[FeedItem]:
        if self._stream is None or self._stream_position is not position:
            await self.close()
            self._stream = await self._open(position, max_await_ms=self.max_await_ms)
        items: list[FeedItem] = []
        try:
            while len(items) < limit:
                change = await _next_change(self._stream)
                if change is None:
                    break
                after = FeedPosition(
                    start_at=position.start_at,
                    resume_token=self._stream.resume_token,
                    streaming=True,
                )
                document = change["fullDocument"]
                event, reason = decode_event(document)
                items.append(
                    FeedItem(
                        event,
                        after,
                        change.get("clusterTime"),
                        change.get("wallTime"),
                        undecodable=reason,
                        raw=document,
                    )
                )
        except BaseException:
            await self.close()
            raise
        self._stream_position = items[-1].position if items else self._idle_position(position)
        return items

    def _idle_position(self, position: FeedPosition) -> FeedPosition:
        # The server's post-batch resume token moves past events the $match filtered out;
        # following it keeps a rarely-fed projection's checkpoint inside the oplog window.
        token = self._stream.resume_token
        if token is None or token == position.resume_token:
            return position
        return FeedPosition(start_at=position.start_at, resume_token=token, streaming=True)

    async def _open(self, position: FeedPosition, *, max_await_ms: int) -> Any:
        match: dict[str, Any] = {"operationType": "insert"}
        if self.event_types is not None:
            match["fullDocument.event_type"] = {"$in": self.event_types}
        options: dict[str, Any] = {"max_await_time_ms": max_await_ms}
        if position.resume_token is not None:
            options["resume_after"] = position.resume_token
        else:
            options["start_at_operation_time"] = position.start_at
        try:
            return await _resolve_watch(self.collection.watch([{"$match": match}], **options))
        except OperationFailure as exc:
            if exc.code in HISTORY_LOST_CODES:
                raise _history_lost(exc) from exc
            raise


def _caught_up(documents: list[dict[str, Any]], base: FeedPosition) -> list[FeedItem]:
    caught_up = FeedItem.caught_up
    return [caught_up(*decode_event(document), base, document) for document in documents]


async def _read_ahead(cursor: Any, limit: int, base: FeedPosition) -> list[FeedItem]:
    return _caught_up(await cursor.to_list(limit), base)


async def _discard(ahead: asyncio.Task[list[FeedItem]]) -> None:
    """Drop a read ahead nobody will use: cancelled (its cursor is closed next), or waited
    for while the driver opens a connection (a connect cancelled midway leaks its socket).
    Its outcome, an error included, is of no interest any more."""
    if not ahead.done() and not driver.opening_connection(ahead):
        ahead.cancel()
    ahead.add_done_callback(_outcome_seen)
    await asyncio.wait([ahead])


def _outcome_seen(ahead: asyncio.Future[Any]) -> None:
    # Marks the error of a dropped read ahead as retrieved (asyncio logs those never asked).
    if not ahead.cancelled():
        ahead.exception()


async def _resolve_watch(opened: Any) -> Any:
    # pymongo async returns a coroutine from watch(); Motor returns the stream itself.
    if hasattr(opened, "__await__"):
        return await opened
    return opened


async def _next_change(stream: Any) -> Mapping[str, Any] | None:
    try:
        change: Mapping[str, Any] | None = await stream.try_next()
    except OperationFailure as exc:
        if exc.code in HISTORY_LOST_CODES:
            raise _history_lost(exc) from exc
        raise
    return change


def _history_lost(exc: OperationFailure) -> FeedHistoryLost:
    return FeedHistoryLost(f"The change stream cannot resume from the checkpoint: {exc}")


def _after_filters(stream_id: Any, version: Any) -> list[dict[str, Any]]:
    """Events after ``(stream_id, version)`` in ``(stream_id, version)`` order, as index
    ranges in that order: the rest of the stream, later streams of its BSON type bracket,
    then streams of the later brackets.

    ``version`` is normally an integer; an undecodable event's may be anything (or ``None``),
    and the keyset still moves past it rather than losing the rest of the stream.
    """
    rest: dict[str, Any] = {"stream_id": {"$eq": stream_id}, "version": {"$gt": version}}
    later_versions = _later_brackets(version)
    if later_versions:
        rest = {
            "stream_id": {"$eq": stream_id},
            "$or": [{"version": {"$gt": version}}, {"version": {"$type": later_versions}}],
        }
    ranges: list[dict[str, Any]] = [rest, {"stream_id": {"$gt": stream_id}}]
    later_streams = _later_brackets(stream_id)
    if later_streams:
        ranges.append({"stream_id": {"$type": later_streams}})
    return ranges


def _later_brackets(value: Any) -> list[str]:
    bracket = _bracket(value)
    if bracket is None:
        return []
    return list(_BRACKETS[_BRACKETS.index(bracket) + 1 :])


def _bracket(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, uuid.UUID | bytes):
        return "binData"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, datetime):
        return "date"
    return None
