"""The context a projection handler writes through: buffered, guarded, exactly-once updates.

A handler says what should change (``await ctx.upsert(order_id, {"$set": {...}})``); the
context collects the changes one event makes to each document, merges them into one update,
and adds the idempotency guard when the event ends. The guard is a single conditional update:
the document changes only if its ``_applied.<stream key>`` is below the event's version, and
the same update records the version and adds one to ``_applied_count``. Replaying an event
the document has already seen therefore matches nothing and changes nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cqrs_mongo.errors import ProjectionError
from cqrs_mongo.eventsourcing import StoredEvent
from cqrs_mongo.projections.stream_keys import encode_stream_key
from cqrs_mongo.projections.update_operators import (
    APPLIED_COUNT_FIELD,
    APPLIED_FIELD,
    Update,
    check_update,
    merge_updates,
)


@dataclass(slots=True)
class GuardedWrite:
    """The merged change one event makes to one projection document.

    Attributes:
        doc_id: the projection document's ``_id``.
        update: the handler's update document, without ``$setOnInsert``.
        on_insert: fields to set only when the document is created (``$setOnInsert``).
        upsert: create the document when it does not exist.
        stream_key: the encoded id of the event's stream.
        version: the event's version in its stream.
    """

    doc_id: Any
    update: Update
    on_insert: dict[str, Any]
    upsert: bool
    stream_key: str
    version: int

    @property
    def applied_path(self) -> str:
        """The field holding the last version applied from this event's stream."""
        return f"{APPLIED_FIELD}.{self.stream_key}"

    def guard_filter(self) -> dict[str, Any]:
        """``{_id, "_applied.<key>": {$not: {$gte: version}}}``: only if not yet applied.

        ``$not`` also matches a document that has never seen the stream (field missing).
        """
        return {"_id": self.doc_id, self.applied_path: {"$not": {"$gte": self.version}}}

    def guarded_update(self) -> Update:
        """The handler's update plus the bookkeeping: record the version, count the event."""
        bookkeeping: Update = {
            "$set": {self.applied_path: self.version},
            "$inc": {APPLIED_COUNT_FIELD: 1},
        }
        return merge_updates(self.update, bookkeeping)

    def skeleton(self) -> Update:
        """The upsert creating the document if missing, so the guarded update can match it.

        It only ever inserts (``$setOnInsert``), so running it against an existing document
        is a no-op and never a duplicate-key error, which inside a transaction would abort it.
        """
        return {"$setOnInsert": {APPLIED_COUNT_FIELD: 0, APPLIED_FIELD: {}, **self.on_insert}}


@dataclass(slots=True)
class _Pending:
    update: Update
    upsert: bool
    on_insert: dict[str, Any] = field(default_factory=dict)


class ProjectionContext(ABC):
    """What a projection handler receives with each event: its envelope and guarded writes.

    Writes are buffered per document while the handler runs and handed to the store, merged
    and guarded, when the event ends; :meth:`get` reads what earlier events wrote.
    """

    def __init__(self) -> None:
        self._stored: StoredEvent | None = None
        self._pending: dict[str, tuple[Any, _Pending]] = {}

    @property
    def stored(self) -> StoredEvent:
        """The stored envelope of the event being applied (stream, version, metadata).

        Raises:
            ProjectionError: no event is being applied.
        """
        if self._stored is None:
            raise ProjectionError("No event is being applied: the context is idle.")
        return self._stored

    @property
    def stream_id(self) -> Any:
        """The id of the stream the event belongs to."""
        return self.stored.stream_id

    @property
    def version(self) -> int:
        """The event's version in its stream."""
        return self.stored.version

    async def upsert(self, doc_id: Any, update: Mapping[str, Any]) -> None:
        """Apply ``update`` to document ``doc_id``, creating the document if it is missing.

        Raises:
            ProjectionError: ``update`` is not a supported update document.
        """
        self._add(doc_id, check_update(update), upsert=True)

    async def update(self, doc_id: Any, update: Mapping[str, Any]) -> None:
        """Apply ``update`` to document ``doc_id`` if it exists; a missing document stays so.

        Raises:
            ProjectionError: ``update`` is not a supported update document.
        """
        self._add(doc_id, check_update(update), upsert=False)

    async def set(
        self, doc_id: Any, values: Mapping[str, Any] | None = None, **fields: Any
    ) -> None:
        """Upsert document ``doc_id`` with ``$set`` of ``values`` and ``fields``.

        Raises:
            ProjectionError: a field is ``_id`` or owned by the store.
        """
        await self.upsert(doc_id, {"$set": {**(values or {}), **fields}})

    async def inc(
        self, doc_id: Any, values: Mapping[str, Any] | None = None, **fields: Any
    ) -> None:
        """Upsert document ``doc_id`` with ``$inc`` of ``values`` and ``fields``.

        Raises:
            ProjectionError: a field is ``_id`` or owned by the store.
        """
        await self.upsert(doc_id, {"$inc": {**(values or {}), **fields}})

    @abstractmethod
    async def get(self, doc_id: Any) -> dict[str, Any] | None:
        """Document ``doc_id`` as earlier events left it (this event's writes not included)."""

    # --- used by stores and workers --------------------------------------------------------

    def begin_event(self, stored: StoredEvent) -> None:
        """Start collecting the writes of ``stored``."""
        self._stored = stored
        self._pending.clear()

    def end_event(self) -> list[GuardedWrite]:
        """The guarded writes of the event that just ran, in the order documents were touched."""
        stored = self.stored
        key = encode_stream_key(stored.stream_id)
        writes = [
            GuardedWrite(
                doc_id, pending.update, pending.on_insert, pending.upsert, key, stored.version
            )
            for doc_id, pending in self._pending.values()
        ]
        self._stored = None
        self._pending.clear()
        return writes

    def _add(self, doc_id: Any, update: Update, *, upsert: bool) -> None:
        self.stored  # noqa: B018 - raises when idle, before anything is buffered
        on_insert = update.pop("$setOnInsert", {})
        key = encode_stream_key(doc_id)
        known = self._pending.get(key)
        if known is None:
            self._pending[key] = (doc_id, _Pending(update, upsert, dict(on_insert)))
            return
        pending = known[1]
        pending.update = merge_updates(pending.update, update)
        pending.upsert = pending.upsert or upsert
        pending.on_insert.update(on_insert)
