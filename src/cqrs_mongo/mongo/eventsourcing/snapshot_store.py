"""MongoSnapshotStore: the newest snapshot of each stream, one document per stream.

SHARDING: shard the snapshots collection on ``{_id: 1}`` (``_id`` is the stream id; a hashed
``{_id: "hashed"}`` also works, as the collection has no other unique index). Every save is an
upsert whose filter pins ``_id``, so it targets one shard, as a sharded upsert must.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.errors import PyMongoError

from cqrs_mongo.errors import ConcurrencyError, DocumentEncodingError, DocumentTooLargeError
from cqrs_mongo.eventsourcing.snapshots import Snapshot
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.codecs import (
    ENCODING_ERRORS,
    MAX_DOCUMENT_BYTES,
    encoded_size,
    find_unencodable,
)
from cqrs_mongo.mongo.errors import conflict_error, is_duplicate_key, is_write_conflict
from cqrs_mongo.mongo.transactions.unit_of_work import session_of
from cqrs_mongo.persistence.unit_of_work import flush_held

DEFAULT_SNAPSHOTS_COLLECTION = "snapshots"


def snapshot_from_document(document: Mapping[str, Any]) -> Snapshot:
    """The :class:`Snapshot` a stored document holds."""
    return Snapshot(
        stream_id=document["_id"],
        stream_type=document["stream_type"],
        version=document["version"],
        schema_version=document.get("schema_version", 1),
        state=dict(document.get("state") or {}),
        taken_at=document["taken_at"],
    )


class MongoSnapshotStore:
    """A :class:`~cqrs_mongo.eventsourcing.ports.SnapshotStore` over one Mongo collection.

    Args:
        database: a database handle with the package's codecs (``uow.database``).
        collection_name: the snapshots collection.
    """

    def __init__(self, database: Any, collection_name: str = DEFAULT_SNAPSHOTS_COLLECTION) -> None:
        self.database = database
        self.collection_name = collection_name
        self.collection = database[collection_name]

    async def save(self, snapshot: Snapshot, *, uow: Any = None) -> bool:
        """Store ``snapshot`` unless one at the same or a newer version exists.

        The write is ``update_one({_id, version: {$lt: new}}, {$set: ...}, upsert=True)``: it
        replaces an older snapshot, creates a missing one, and when a newer one exists the
        filter misses and the upsert's insert fails on ``_id`` (11000), which means "keep
        the newer one". Inside a transaction that failure has already aborted the
        transaction on the server, so it is raised as a conflict instead of ignored.

        Returns:
            Whether the snapshot was stored.

        The document is encoded here first: a state BSON cannot hold, or one over 16 MiB,
        is refused before anything is sent, so the unit's transaction is not aborted by a
        server-side failure and the events it appended still commit.

        Raises:
            ConcurrencyError: a newer snapshot exists and the unit runs in a transaction, or a
                concurrent transaction is writing the same snapshot.
            DocumentEncodingError: the snapshot cannot be stored (nothing was sent);
                :class:`DocumentTooLargeError` when it exceeds 16 MiB.
        """
        in_transaction = bool(getattr(uow, "in_transaction", False))
        fields = _fields(snapshot)
        check_storable(snapshot, fields)
        await flush_held(uow)  # the events it follows go first, in the same transaction
        try:
            await self.collection.update_one(
                {"_id": snapshot.stream_id, "version": {"$lt": snapshot.version}},
                {"$set": fields},
                upsert=True,
                session=session_of(uow),
            )
        except PyMongoError as exc:
            if is_write_conflict(exc):
                raise conflict_error(
                    exc, snapshot.stream_type, snapshot.stream_id, snapshot.version
                ) from exc
            if not is_duplicate_key(exc):
                raise
            if in_transaction:
                raise await self._newer_snapshot_error(snapshot) from exc
            return False
        return True

    async def load_many(self, stream_ids: Sequence[Any], *, uow: Any = None) -> dict[Any, Snapshot]:
        """The snapshot of each of ``stream_ids`` that has one, in one query."""
        if not stream_ids:
            return {}
        await flush_held(uow)
        # One more than can match: a batch that is exactly full leaves the cursor open and
        # costs a getMore to learn that nothing follows.
        cursor = self.collection.find(
            {"_id": {"$in": list(stream_ids)}},
            session=session_of(uow),
            batch_size=len(stream_ids) + 1,
        )
        snapshots = [snapshot_from_document(doc) for doc in await driver.to_list(cursor)]
        return {snapshot.stream_id: snapshot for snapshot in snapshots}

    async def _newer_snapshot_error(self, snapshot: Snapshot) -> ConcurrencyError:
        # The transaction is gone; read the committed snapshot outside it for the message.
        try:
            stored = await self.collection.find_one({"_id": snapshot.stream_id}, {"version": 1})
        except PyMongoError:
            stored = None
        return ConcurrencyError(
            snapshot.stream_type,
            snapshot.stream_id,
            snapshot.version,
            None if stored is None else stored.get("version"),
            "a snapshot at the same or a newer version exists",
        )


def check_storable(snapshot: Snapshot, fields: dict[str, Any]) -> None:
    """Refuse, before sending, a snapshot document BSON cannot hold or the server would reject.

    Raises:
        DocumentEncodingError: a value cannot be encoded (the field is named).
        DocumentTooLargeError: the document exceeds 16 MiB.
    """
    document = {"_id": snapshot.stream_id, **fields}
    try:
        size = encoded_size(document)
    except ENCODING_ERRORS as exc:
        field, reason = find_unencodable(document) or (None, str(exc))
        raise DocumentEncodingError(
            f"snapshot of {snapshot.stream_type}",
            snapshot.stream_id,
            snapshot.version,
            field,
            reason,
        ) from exc
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentTooLargeError(
            f"snapshot of {snapshot.stream_type}",
            snapshot.stream_id,
            snapshot.version,
            None,
            f"{size} bytes encoded, over the {MAX_DOCUMENT_BYTES}-byte BSON limit",
        )


def _fields(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "stream_type": snapshot.stream_type,
        "version": snapshot.version,
        "schema_version": snapshot.schema_version,
        "state": snapshot.state,
        "taken_at": snapshot.taken_at,
    }
