"""Projection documents in their own collections, and the worker's bookkeeping beside them.

Collections (names configurable):

* each projection's own collection (``order_summaries``, after a rebuild
  ``order_summaries__v2``...): one document per read-model row, holding only what the
  handlers wrote;
* ``projection_positions``: per projection collection and stream, the last version applied
  (see :mod:`cqrs_mongo.mongo.projections.stream_positions`);
* ``projection_checkpoints``: per projection collection, the feed position it has applied up
  to and the worker's lease, written in the same transaction as the projection documents;
* ``projection_aliases``: per projection name, the collection readers should use;
* ``parked_events``: events a projection set aside, with the error and the stored event.

Every write takes ``session=``: the caller's unit of work decides what commits together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.errors import BulkWriteError

from cqrs_mongo.errors import ProjectionError
from cqrs_mongo.eventsourcing import StoredEvent
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.errors import TRANSIENT_TRANSACTION_ERROR, error_labels
from cqrs_mongo.mongo.eventsourcing.event_store import event_from_document, event_to_document
from cqrs_mongo.mongo.projections.event_feed import FeedPosition, decode_event
from cqrs_mongo.mongo.projections.stream_positions import DEFAULT_POSITIONS, StreamPositions
from cqrs_mongo.projections import BOOKKEEPING_FIELDS, ParkedEvent, ProjectionContext, identity_key

DEFAULT_CHECKPOINTS = "projection_checkpoints"
DEFAULT_ALIASES = "projection_aliases"
DEFAULT_PARKED = "parked_events"
DEFAULT_HELD_CACHE_LIMIT = 10_000
"""Parked events a worker remembers per collection; beyond it, each batch asks the server."""

PARKED_INDEX = IndexModel(
    [("collection", ASCENDING), ("stream_id", ASCENDING), ("version", ASCENDING)],
    name="collection_1_stream_id_1_version_1",
)

EXCLUDE_BOOKKEEPING = dict.fromkeys(BOOKKEEPING_FIELDS, 0)
"""A find projection leaving out the bookkeeping fields earlier versions wrote."""


class StagedWriteError(ProjectionError):
    """The server rejected a staged projection update (not a transient conflict).

    Attributes:
        owner: the tag given to :meth:`MongoProjectionContext.stage_event` for the event
            whose update failed.
    """

    def __init__(self, owner: int, exc: BulkWriteError) -> None:
        self.owner = owner
        errors = exc.details.get("writeErrors") or [{}]
        super().__init__(f"Projection update rejected: {errors[0].get('errmsg', exc)}")


class MongoProjectionContext(ProjectionContext):
    """A :class:`ProjectionContext` writing to one collection in one session.

    Each event's writes become one update per document (two when a ``$setOnInsert`` names
    a field the update also changes). Staged updates go to the server in one ordered
    ``bulk_write`` per batch, or before a read. The runner has already skipped any event
    applied before, so the updates carry no guard.

    Attributes:
        changed: the ids of the documents written to since the context was made.
    """

    def __init__(self, collection: Any, session: Any) -> None:
        super().__init__()
        self.collection = collection
        self.session = session
        self.changed: dict[Hashable, Any] = {}
        self._staged: list[UpdateOne] = []
        self._owners: list[int] = []

    def stage_event(self, owner: int = 0) -> int:
        """Stage the writes of the event that just ran, tagged ``owner``.

        Returns:
            How many documents the event touched.
        """
        # The event's writes straight from the context's buffer (keyed by identity_key of
        # the document id), without end_event's list: this runs for every event applied.
        pending = self._pending
        staged, owners, changed = self._staged, self._owners, self.changed
        for key, write in pending.items():
            doc_id, upsert = write.doc_id, write.upsert
            for statement in write.statements():
                staged.append(UpdateOne({"_id": doc_id}, statement, upsert=upsert))
                owners.append(owner)
            changed[key] = doc_id
        count = len(pending)
        self._end()
        return count

    async def flush(self) -> None:
        """Send the staged updates in one ordered bulk write.

        Raises:
            StagedWriteError: the server rejected an update; names the event's tag.
            PyMongoError: a transient failure (write conflict), to retry the transaction.
        """
        staged, self._staged = self._staged, []
        owners, self._owners = self._owners, []
        try:
            await driver.bulk_write(self.collection, staged, session=self.session, ordered=True)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors") or []
            if TRANSIENT_TRANSACTION_ERROR in error_labels(exc) or not errors:
                raise
            raise StagedWriteError(owners[int(errors[0]["index"])], exc) from exc

    async def get(self, doc_id: Any) -> dict[str, Any] | None:
        """Document ``doc_id`` as earlier events left it."""
        await self.flush()
        document: dict[str, Any] | None = await self.collection.find_one(
            {"_id": doc_id}, EXCLUDE_BOOKKEEPING, session=self.session
        )
        return document


class MongoProjectionStore:
    """Projection collections, checkpoints, aliases and parked events in one database.

    Args:
        database: the database handle (``uow.database`` or ``factory.database``).
        checkpoints: the checkpoints collection.
        aliases: the aliases collection.
        parked: the parked-events collection.
        positions: the per-stream positions collection.
    """

    def __init__(
        self,
        database: Any,
        *,
        checkpoints: str = DEFAULT_CHECKPOINTS,
        aliases: str = DEFAULT_ALIASES,
        parked: str = DEFAULT_PARKED,
        positions: str = DEFAULT_POSITIONS,
    ) -> None:
        self.database = database
        self.checkpoints = database[checkpoints]
        self.aliases = database[aliases]
        self.parked_events = database[parked]
        self.positions = StreamPositions(database, positions)
        self.held_cache_limit = DEFAULT_HELD_CACHE_LIMIT
        self._held: dict[str, dict[Hashable, int] | None] = {}

    async def ensure_indexes(self) -> None:
        """Create the parked-events index (idempotent)."""
        await self.parked_events.create_indexes([PARKED_INDEX])

    def context(self, collection: str, session: Any) -> MongoProjectionContext:
        """A context writing to ``collection`` in ``session``."""
        return MongoProjectionContext(self.database[collection], session)

    # --- aliases -------------------------------------------------------------------------

    async def collection_for(self, name: str, *, session: Any = None) -> str:
        """The collection readers of projection ``name`` use (``name`` itself by default)."""
        alias = await self.aliases.find_one({"_id": name}, session=session)
        return name if alias is None else str(alias["collection"])

    async def generation(self, name: str, *, session: Any = None) -> int:
        """How many times projection ``name`` has been built (1 before any rebuild)."""
        alias = await self.aliases.find_one({"_id": name}, session=session)
        return 1 if alias is None else int(alias["generation"])

    async def switch(self, name: str, collection: str, generation: int, *, session: Any) -> None:
        """Point readers of projection ``name`` at ``collection``, in one document write."""
        await self.aliases.update_one(
            {"_id": name},
            {"$set": {"collection": collection, "generation": generation, "at": _now()}},
            upsert=True,
            session=session,
        )

    # --- checkpoints ---------------------------------------------------------------------

    async def load_checkpoint(self, collection: str, *, session: Any = None) -> FeedPosition | None:
        """The feed position ``collection`` has applied up to, or ``None`` if it never ran."""
        checkpoint = await self.checkpoints.find_one({"_id": collection}, session=session)
        return checkpoint_position(checkpoint)

    async def save_checkpoint(
        self,
        collection: str,
        position: FeedPosition,
        events: int,
        *,
        session: Any,
        fence: Mapping[str, Any] | None = None,
        lease_expires_at: datetime | None = None,
    ) -> bool:
        """Record that ``collection`` has applied the feed up to ``position``.

        With ``fence`` (the lease holder's token filter) the update lands only while that
        lease is current, and renews it until ``lease_expires_at``; without, it upserts.

        Returns:
            Whether the checkpoint was written (``False``: the fence matched nothing).
        """
        changes: dict[str, Any] = {"position": position.to_document(), "at": _now()}
        if lease_expires_at is not None:
            changes["lease.expires_at"] = lease_expires_at
        result = await self.checkpoints.update_one(
            {"_id": collection, **(fence or {})},
            {"$set": changes, "$inc": {"events": events}},
            upsert=fence is None,
            session=session,
        )
        return fence is None or result.matched_count == 1

    async def checkpoint_document(self, collection: str) -> dict[str, Any] | None:
        """The raw checkpoint document of ``collection`` (position, lease, counters)."""
        document: dict[str, Any] | None = await self.checkpoints.find_one({"_id": collection})
        return document

    async def delete_checkpoint(self, collection: str) -> None:
        """Forget where ``collection`` was and what it applied (before building it again)."""
        await self.checkpoints.delete_one({"_id": collection})
        await self.positions.delete(collection)

    async def parked_count(self, collection: str) -> int:
        """How many events are parked for ``collection``."""
        count: int = await self.parked_events.count_documents({"collection": collection})
        return count

    # --- parked events -------------------------------------------------------------------

    async def held_streams(
        self, collection: str, stream_ids: Iterable[Any], *, session: Any
    ) -> dict[Hashable, int]:
        """For each of ``stream_ids`` with parked events, the version of its first one
        (keyed by :func:`~cqrs_mongo.projections.identity_key`).

        Only the lease holder parks and unparks a collection's events, so the first call
        of a term reads them all (up to ``held_cache_limit``) and later calls answer from
        memory; :meth:`park` and :meth:`unpark` drop what is remembered, and so does
        :meth:`forget_held` (the worker calls it when its lease or a batch is in doubt).
        """
        ids = list(stream_ids)
        if not ids:
            return {}
        if collection not in self._held:
            self._held[collection] = await self._all_held(collection, session)
        known = self._held[collection]
        if known is not None:
            return {key: known[key] for key in map(identity_key, ids) if key in known}
        return _first_parked(
            await driver.to_list(
                self.parked_events.find(
                    {"collection": collection, "stream_id": {"$in": ids}},
                    {"stream_id": 1, "version": 1},
                    session=session,
                )
            )
        )

    def forget_held(self) -> None:
        """Drop the parked streams remembered by :meth:`held_streams`."""
        self._held.clear()

    async def _all_held(self, collection: str, session: Any) -> dict[Hashable, int] | None:
        # None when there are too many to keep: each batch then asks for its own streams.
        cursor = self.parked_events.find(
            {"collection": collection},
            {"stream_id": 1, "version": 1},
            session=session,
            limit=self.held_cache_limit + 1,
        )
        documents = await driver.to_list(cursor)
        if len(documents) > self.held_cache_limit:
            return None
        return _first_parked(documents)

    async def park(
        self,
        collection: str,
        event: StoredEvent,
        *,
        error: str | None,
        attempts: int,
        held_behind: int | None,
        session: Any,
        raw: Mapping[str, Any] | None = None,
    ) -> None:
        """Set ``event`` aside for ``collection``; parking it again changes nothing.

        ``raw`` is the stored document of an event that could not be decoded; it is kept
        as it was, and ``event`` only gives the stream id, version and type it claims.
        """
        key = {"collection": collection, "stream_id": event.stream_id, "version": event.version}
        document = {
            **key,
            "event_type": event.event_type,
            "event_id": event.event_id,
            "error": error,
            "attempts": attempts,
            "parked_at": _now(),
            "held_behind": held_behind,
            "event": dict(raw) if raw is not None else event_to_document(event),
            "undecodable": raw is not None,
        }
        self._held.pop(collection, None)
        # $setOnInsert, not insert: a duplicate key would abort the worker's transaction.
        await self.parked_events.update_one(
            {"_id": key}, {"$setOnInsert": document}, upsert=True, session=session
        )

    async def parked(self, collection: str, stream_id: Any = None) -> list[ParkedEvent]:
        """The events parked for ``collection`` (of one stream if given), in stream order."""
        return [_parked_event(doc) for doc in await self._parked_documents(collection, stream_id)]

    async def parked_events_of(
        self, collection: str, stream_id: Any, *, session: Any = None
    ) -> list[tuple[StoredEvent, Mapping[str, Any] | None]]:
        """The parked events of one stream, oldest first; for one that could not be decoded,
        a stand-in (stream id and version as parked) and its stored document."""
        documents = await self._parked_documents(collection, stream_id, session=session)
        parked: list[tuple[StoredEvent, Mapping[str, Any] | None]] = []
        for doc in documents:
            if doc.get("undecodable"):
                event, _ = decode_event(doc["event"])
                stand_in = dataclasses.replace(
                    event, stream_id=doc["stream_id"], version=int(doc["version"])
                )
                parked.append((stand_in, doc["event"]))
            else:
                parked.append((event_from_document(doc["event"]), None))
        return parked

    async def parked_stream_ids(self, collection: str) -> list[Any]:
        """The streams with parked events for ``collection``."""
        ids: list[Any] = await self.parked_events.distinct("stream_id", {"collection": collection})
        return ids

    async def unpark(self, collection: str, event: StoredEvent, *, session: Any) -> None:
        """Remove ``event`` from the parked events of ``collection``."""
        key = {"collection": collection, "stream_id": event.stream_id, "version": event.version}
        self._held.pop(collection, None)
        await self.parked_events.delete_one({"_id": key}, session=session)

    async def record_failure(
        self, collection: str, event: StoredEvent, error: str, attempts: int
    ) -> None:
        """Note on a parked event that a replay failed again."""
        key = {"collection": collection, "stream_id": event.stream_id, "version": event.version}
        await self.parked_events.update_one(
            {"_id": key},
            {"$set": {"error": error, "held_behind": None}, "$inc": {"attempts": attempts}},
        )

    async def _parked_documents(
        self, collection: str, stream_id: Any, *, session: Any = None
    ) -> Sequence[dict[str, Any]]:
        query: dict[str, Any] = {"collection": collection}
        if stream_id is not None:
            query["stream_id"] = {"$eq": stream_id}
        cursor = self.parked_events.find(query, session=session).sort(
            [("stream_id", ASCENDING), ("version", ASCENDING)]
        )
        return await driver.to_list(cursor)


def checkpoint_position(checkpoint: Mapping[str, Any] | None) -> FeedPosition | None:
    """The feed position a checkpoint document stores (``None``: the projection never ran)."""
    if checkpoint is None or checkpoint.get("position") is None:
        return None
    return FeedPosition.from_document(checkpoint["position"])


def _first_parked(documents: Iterable[Mapping[str, Any]]) -> dict[Hashable, int]:
    first: dict[Hashable, int] = {}
    for doc in documents:
        key = identity_key(doc["stream_id"])
        first[key] = min(first.get(key, doc["version"]), doc["version"])
    return first


def _parked_event(doc: dict[str, Any]) -> ParkedEvent:
    return ParkedEvent(
        collection=doc["collection"],
        stream_id=doc["stream_id"],
        version=int(doc["version"]),
        event_type=doc["event_type"],
        event_id=doc.get("event_id"),
        error=doc.get("error"),
        attempts=int(doc.get("attempts", 0)),
        parked_at=doc["parked_at"],
        held_behind=doc.get("held_behind"),
    )


def _now() -> datetime:
    return datetime.now(UTC)
