"""In-memory projection store and runner, for users' unit tests of their projections."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from cqrs_mongo.errors import ProjectionError
from cqrs_mongo.eventsourcing import InMemoryEventStore, StoredEvent
from cqrs_mongo.projections.context import GuardedWrite, ProjectionContext
from cqrs_mongo.projections.projection import Projection
from cqrs_mongo.projections.stream_keys import encode_stream_key
from cqrs_mongo.projections.update_operators import (
    APPLIED_FIELD,
    BOOKKEEPING_FIELDS,
    apply_update,
)


class InMemoryProjectionStore:
    """Projection documents in dicts, written with the same guard the Mongo store uses.

    Example:
        >>> store = InMemoryProjectionStore()
        >>> store.documents("order_summaries")
        []
    """

    def __init__(self) -> None:
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}

    def documents(self, collection: str, *, bookkeeping: bool = False) -> list[dict[str, Any]]:
        """Copies of the documents of ``collection``, optionally with the bookkeeping fields."""
        return [_public(doc, bookkeeping) for doc in self.collections.get(collection, {}).values()]

    def get(
        self, collection: str, doc_id: Any, *, bookkeeping: bool = False
    ) -> dict[str, Any] | None:
        """A copy of document ``doc_id`` of ``collection``, or ``None``."""
        doc = self.collections.get(collection, {}).get(encode_stream_key(doc_id))
        return None if doc is None else _public(doc, bookkeeping)

    def write(self, collection: str, writes: Iterable[GuardedWrite]) -> int:
        """Apply ``writes`` with their guards; returns how many changed a document.

        Raises:
            ProjectionError: an update cannot be applied (it is then applied to nothing).
        """
        documents = self.collections.setdefault(collection, {})
        applied = 0
        for write in writes:
            key = encode_stream_key(write.doc_id)
            current = documents.get(key)
            if current is None and not write.upsert:
                continue
            inserting = current is None
            draft = copy.deepcopy(current) if current is not None else {"_id": write.doc_id}
            if inserting:
                apply_update(draft, write.skeleton(), inserting=True)
            if draft[APPLIED_FIELD].get(write.stream_key, 0) >= write.version:
                continue
            apply_update(draft, write.guarded_update(), inserting=False)
            documents[key] = draft
            applied += 1
        return applied


class InMemoryProjectionContext(ProjectionContext):
    """A :class:`ProjectionContext` reading from an :class:`InMemoryProjectionStore`."""

    def __init__(self, store: InMemoryProjectionStore, collection: str) -> None:
        super().__init__()
        self.store = store
        self.collection = collection

    async def get(self, doc_id: Any) -> dict[str, Any] | None:
        """Document ``doc_id`` as earlier events left it, without bookkeeping fields."""
        return self.store.get(self.collection, doc_id)


class InMemoryProjectionRunner:
    """Feeds stored events to a projection over an in-memory store, at once, in order.

    Each event's writes land together or not at all; an event applied twice changes nothing
    the second time, as with the Mongo worker.

    Example:
        >>> runner = InMemoryProjectionRunner(OrderSummaries())  # doctest: +SKIP
        >>> await runner.apply_store(event_store)  # doctest: +SKIP
        >>> runner.documents()  # doctest: +SKIP
    """

    def __init__(
        self, projection: Projection, store: InMemoryProjectionStore | None = None
    ) -> None:
        self.projection = projection
        self.store = store if store is not None else InMemoryProjectionStore()
        self.collection = projection.name
        self._ctx = InMemoryProjectionContext(self.store, self.collection)

    async def apply(self, events: Iterable[StoredEvent]) -> int:
        """Apply ``events`` in the order given; returns how many had a handler.

        Raises:
            ProjectionError: a handler failed; chained from its error, naming the event.
        """
        handled = 0
        for stored in events:
            self._ctx.begin_event(stored)
            try:
                if not await self.projection.apply(stored, self._ctx):
                    continue
                self.store.write(self.collection, self._ctx.end_event())
            except Exception as exc:
                self._ctx.end_event()
                raise ProjectionError(
                    f"Projection {self.projection.name!r}: event {stored.event_type} "
                    f"{stored.stream_id!r}@{stored.version} failed: {exc}"
                ) from exc
            handled += 1
        return handled

    async def apply_store(self, event_store: InMemoryEventStore) -> int:
        """Apply every event of ``event_store``, stream by stream, each in version order.

        Raises:
            ProjectionError: a handler failed.
        """
        events = [event for stream in event_store.streams.values() for event in stream]
        return await self.apply(copy.deepcopy(events))

    def documents(self, *, bookkeeping: bool = False) -> list[dict[str, Any]]:
        """The projection's documents, optionally with their bookkeeping fields."""
        return self.store.documents(self.collection, bookkeeping=bookkeeping)

    def get(self, doc_id: Any, *, bookkeeping: bool = False) -> dict[str, Any] | None:
        """One projection document, or ``None``."""
        return self.store.get(self.collection, doc_id, bookkeeping=bookkeeping)


def _public(document: dict[str, Any], bookkeeping: bool) -> dict[str, Any]:
    if bookkeeping:
        return copy.deepcopy(document)
    return {k: copy.deepcopy(v) for k, v in document.items() if k not in BOOKKEEPING_FIELDS}
