"""In-memory projection store and runner, for users' unit tests of their projections."""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any

from cqrs_mongo.errors import ProjectionError, ProjectionGapError
from cqrs_mongo.eventsourcing import InMemoryEventStore, StoredEvent
from cqrs_mongo.projections.context import ProjectionContext, ProjectionWrite
from cqrs_mongo.projections.keys import hashable_id, identity_key
from cqrs_mongo.projections.projection import Projection
from cqrs_mongo.projections.update_operators import BOOKKEEPING_FIELDS, apply_update

logger = logging.getLogger("cqrs_mongo.projections.in_memory")

AfterCommit = Callable[[Mapping[str, frozenset[Any]]], Awaitable[None] | None]
"""Called with the ids of the documents a committed batch changed, keyed by collection."""


class InMemoryProjectionStore:
    """Projection documents in dicts, and beside them the last version applied per stream.

    Example:
        >>> store = InMemoryProjectionStore()
        >>> store.documents("order_summaries")
        []
    """

    def __init__(self) -> None:
        self.collections: dict[str, dict[Hashable, dict[str, Any]]] = {}
        self.positions: dict[str, dict[Hashable, int]] = {}

    def documents(self, collection: str, *, bookkeeping: bool = False) -> list[dict[str, Any]]:
        """Copies of the documents of ``collection``.

        ``bookkeeping`` is kept for compatibility: documents no longer hold any.
        """
        return [_public(doc, bookkeeping) for doc in self.collections.get(collection, {}).values()]

    def get(
        self, collection: str, doc_id: Any, *, bookkeeping: bool = False
    ) -> dict[str, Any] | None:
        """A copy of document ``doc_id`` of ``collection``, or ``None``."""
        doc = self.collections.get(collection, {}).get(identity_key(doc_id))
        return None if doc is None else _public(doc, bookkeeping)

    def position(self, collection: str, stream_id: Any) -> int:
        """The last version of ``stream_id`` applied to ``collection`` (0: none)."""
        return self.positions.get(collection, {}).get(identity_key(stream_id), 0)

    def commit(
        self, collection: str, stream_id: Any, version: int, writes: Iterable[ProjectionWrite]
    ) -> set[Hashable]:
        """Apply one event's ``writes`` and move its stream to ``version``, all or nothing.

        Returns:
            The keys of the documents the writes changed or created.

        Raises:
            ProjectionError: an update cannot be applied (then nothing is).
        """
        documents = self.collections.setdefault(collection, {})
        drafts: dict[Hashable, dict[str, Any]] = {}
        for write in writes:
            key = identity_key(write.doc_id)
            current = drafts.get(key, documents.get(key))
            if current is None and not write.upsert:
                continue
            inserting = current is None
            draft = copy.deepcopy(current) if current is not None else {"_id": write.doc_id}
            for statement in write.statements():
                apply_update(draft, statement, inserting=inserting)
            drafts[key] = draft
        documents.update(drafts)
        self.positions.setdefault(collection, {})[identity_key(stream_id)] = version
        return set(drafts)


class InMemoryProjectionContext(ProjectionContext):
    """A :class:`ProjectionContext` reading from an :class:`InMemoryProjectionStore`."""

    def __init__(self, store: InMemoryProjectionStore, collection: str) -> None:
        super().__init__()
        self.store = store
        self.collection = collection

    async def get(self, doc_id: Any) -> dict[str, Any] | None:
        """Document ``doc_id`` as earlier events left it."""
        return self.store.get(self.collection, doc_id)


class InMemoryProjectionRunner:
    """Feeds stored events to a projection over an in-memory store, at once, in order.

    The same rules as the Mongo worker: an event at or below its stream's applied version is
    skipped before its handler runs; each event's writes and its stream's new position land
    together or not at all; an event whose stream has not reached the version before it is
    a gap and refused. After-commit callbacks get the ids of the documents each
    :meth:`apply` call changed (also when it stops at a failing event: what was applied
    before it stays applied).

    Example:
        >>> runner = InMemoryProjectionRunner(OrderSummaries())  # doctest: +SKIP
        >>> await runner.apply_store(event_store)  # doctest: +SKIP
        >>> runner.documents()  # doctest: +SKIP
    """

    def __init__(
        self,
        projection: Projection,
        store: InMemoryProjectionStore | None = None,
        *,
        after_commit: Iterable[AfterCommit] = (),
    ) -> None:
        self.projection = projection
        self.store = store if store is not None else InMemoryProjectionStore()
        self.collection = projection.name
        self._ctx = InMemoryProjectionContext(self.store, self.collection)
        self._after_commit = list(after_commit)

    def add_after_commit(self, callback: AfterCommit) -> None:
        """Call ``callback(changes)`` after each :meth:`apply` that changed documents."""
        self._after_commit.append(callback)

    async def apply(self, events: Iterable[StoredEvent]) -> int:
        """Apply ``events`` in the order given; returns how many ran a handler.

        Raises:
            ProjectionGapError: an event's stream is not at the version before it.
            ProjectionError: a handler failed; chained from its error, naming the event.
        """
        handled = 0
        changed: dict[Hashable, Any] = {}
        try:
            for stored in events:
                applied = self.store.position(self.collection, stored.stream_id)
                if stored.version <= applied:
                    continue
                if stored.version != applied + 1:
                    raise ProjectionGapError(
                        f"Projection {self.projection.name!r}: event {stored.stream_id!r}"
                        f"@{stored.version} arrived with the stream at version {applied}; "
                        f"expected version {applied + 1} first."
                    )
                if await self._apply_one(stored, changed):
                    handled += 1
        finally:
            await self._notify(changed)
        return handled

    async def _apply_one(self, stored: StoredEvent, changed: dict[Hashable, Any]) -> bool:
        self._ctx.begin_event(stored)
        try:
            ran = await self.projection.apply(stored, self._ctx)
            writes = self._ctx.end_event()
            for key in self.store.commit(self.collection, stored.stream_id, stored.version, writes):
                changed[key] = self.store.collections[self.collection][key]["_id"]
        except Exception as exc:
            self._ctx.end_event()
            raise ProjectionError(
                f"Projection {self.projection.name!r}: event {stored.event_type} "
                f"{stored.stream_id!r}@{stored.version} failed: {exc}"
            ) from exc
        return ran

    async def _notify(self, changed: dict[Hashable, Any]) -> None:
        if not changed or not self._after_commit:
            return
        changes = {self.collection: frozenset(hashable_id(v) for v in changed.values())}
        await run_after_commit(self._after_commit, changes, self.projection.name)

    async def apply_store(self, event_store: InMemoryEventStore) -> int:
        """Apply every event of ``event_store``, stream by stream, each in version order.

        Raises:
            ProjectionError: a handler failed.
        """
        events = [event for stream in event_store.streams.values() for event in stream]
        return await self.apply(copy.deepcopy(events))

    def documents(self, *, bookkeeping: bool = False) -> list[dict[str, Any]]:
        """The projection's documents."""
        return self.store.documents(self.collection, bookkeeping=bookkeeping)

    def get(self, doc_id: Any, *, bookkeeping: bool = False) -> dict[str, Any] | None:
        """One projection document, or ``None``."""
        return self.store.get(self.collection, doc_id, bookkeeping=bookkeeping)

    def position(self, stream_id: Any) -> int:
        """The last version of ``stream_id`` this projection applied (0: none)."""
        return self.store.position(self.collection, stream_id)


async def run_after_commit(
    callbacks: Iterable[AfterCommit], changes: Mapping[str, frozenset[Any]], name: str
) -> None:
    """Call each callback with ``changes``; a failing one is logged and the others still run.

    The batch has committed: nothing a callback does can undo or repeat it.
    """
    for callback in callbacks:
        try:
            outcome = callback(changes)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("Projection %r: an after-commit callback failed.", name)


def _public(document: dict[str, Any], bookkeeping: bool) -> dict[str, Any]:
    if bookkeeping:
        return copy.deepcopy(document)
    return {k: copy.deepcopy(v) for k, v in document.items() if k not in BOOKKEEPING_FIELDS}
