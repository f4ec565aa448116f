"""The context a projection handler writes through: buffered, merged, one update per document.

A handler says what should change (``await ctx.upsert(order_id, {"$set": {...}})``); the
context collects the changes one event makes to each document and merges them into one
update when the event ends. Exactly-once is not the document's business: the runner keeps,
beside the documents, the last version it applied per stream, skips an event at or below
it *before* its handler runs, and moves the position in the same transaction as the writes.
So a handler only ever runs against the state earlier events left, and each write is a plain
update of one document, with nothing added to it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from cqrs_mongo.errors import ProjectionError
from cqrs_mongo.eventsourcing import StoredEvent
from cqrs_mongo.projections.keys import identity_key
from cqrs_mongo.projections.update_operators import Update, check_update, merge_updates


@dataclass(slots=True)
class ProjectionWrite:
    """The merged change one event makes to one projection document.

    Attributes:
        doc_id: the projection document's ``_id``.
        update: the handler's update document, without ``$setOnInsert``.
        on_insert: fields to set only when the document is created (``$setOnInsert``).
        upsert: create the document when it does not exist.
    """

    doc_id: Any
    update: Update
    on_insert: dict[str, Any]
    upsert: bool

    def statements(self) -> list[Update]:
        """The update documents to send for ``_id: doc_id``, in order (usually one).

        ``$setOnInsert`` rides in the same update unless it names a field the update also
        changes (the server refuses two operators on one path); then the insert-only part
        goes first, in its own upsert, and the update follows, as the handler meant.
        """
        if not self.on_insert or not self.upsert:
            return [self.update]
        if _overlaps(self.on_insert, self.update):
            return [{"$setOnInsert": dict(self.on_insert)}, self.update]
        return [{**self.update, "$setOnInsert": dict(self.on_insert)}]


def _overlaps(on_insert: Mapping[str, Any], update: Update) -> bool:
    inserted = list(on_insert)
    for fields in update.values():
        for path in fields:
            for other in inserted:
                if path == other or path.startswith(other + ".") or other.startswith(path + "."):
                    return True
    return False


class ProjectionContext(ABC):
    """What a projection handler receives with each event: its envelope and buffered writes.

    Writes are buffered per document while the handler runs and handed to the store, merged,
    when the event ends; :meth:`get` reads what earlier events wrote.
    """

    def __init__(self) -> None:
        self._stored: StoredEvent | None = None
        # The event's writes so far, one per document (merged as they come), by id key.
        self._pending: dict[Hashable, ProjectionWrite] = {}

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
        stored = self._stored  # not through .stored: handlers read it for every event
        return (stored if stored is not None else self.stored).stream_id

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

    def end_event(self) -> list[ProjectionWrite]:
        """The writes of the event that just ran, in the order documents were touched."""
        writes = list(self._pending.values())
        self._end()
        return writes

    def _end(self) -> None:
        # The context goes idle; a store reading self._pending itself calls this after.
        self._stored = None
        self._pending.clear()

    def _add(self, doc_id: Any, update: Update, *, upsert: bool) -> None:
        if self._stored is None:
            self.stored  # noqa: B018 - raises the idle context's error, before anything is buffered
        # ``update`` is check_update's copy: taking $setOnInsert out of it changes nothing
        # of the handler's.
        on_insert = update.pop("$setOnInsert", None)
        key = identity_key(doc_id)
        known = self._pending.get(key)
        if known is None:
            self._pending[key] = ProjectionWrite(doc_id, update, dict(on_insert or ()), upsert)
            return
        known.update = merge_updates(known.update, update)
        known.upsert = known.upsert or upsert
        if on_insert:
            known.on_insert.update(on_insert)
