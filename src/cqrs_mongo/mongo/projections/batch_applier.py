"""One batch of feed items applied in one transaction: positions, gaps, handlers, checkpoint.

In the batch's transaction (a snapshot), the applier

1. reads the parked streams and the per-stream positions of the batch's streams (one
   ``find`` each; what the leader already knows comes from its caches, and a stream that a
   fresh catch-up round meets for the first time has no position to read);
2. looks for gaps: an event at version > position + 1 (beyond the versions the batch
   itself brings) means events of the stream are missing from the feed. One ``find`` on
   the events collection fetches, for every such stream, the versions in between; they are
   applied first, in order (events of types the projection ignores just move the position);
3. runs each event's handler only if its version is its stream's position + 1; an event at
   or below the position was applied before and is skipped *before* its handler runs;
4. sends the documents' updates (one ``bulk_write``), the moved positions (one
   ``bulk_write``) and the checkpoint, which also renews the lease and is filtered on the
   lease token, so a deposed leader's batch rolls back.

A batch stops early, at an event boundary, once it has run ``max_seconds``: the transaction
stays short, and a worker killed mid-batch holds its documents only briefly.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cqrs_mongo.errors import ProjectionGapError
from cqrs_mongo.eventsourcing import StoredEvent
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.eventsourcing.event_store import STREAM_ORDER
from cqrs_mongo.mongo.projections.event_feed import FeedItem, decode_event
from cqrs_mongo.mongo.projections.lease import ProjectionLease
from cqrs_mongo.mongo.projections.projection_store import (
    MongoProjectionContext,
    MongoProjectionStore,
    StagedWriteError,
)
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork
from cqrs_mongo.projections import Projection, identity_key


def gap_filter(gaps: Sequence[tuple[Any, int, int]]) -> dict[str, Any]:
    """The events strictly between ``low`` and ``high`` of each ``(stream_id, low, high)``."""
    return {
        "$or": [
            {"stream_id": {"$eq": sid}, "version": {"$gt": low, "$lt": high}}
            for sid, low, high in gaps
        ]
    }


class HandlerFailed(Exception):
    """The event at ``index`` of a batch failed; the batch's transaction is rolled back."""

    def __init__(self, index: int, error: BaseException) -> None:
        self.index = index
        self.error = error
        super().__init__(f"Event {index} of the batch failed: {error}")


@dataclass(slots=True)
class BatchResult:
    """What a committed batch did.

    Attributes:
        consumed: how many items of the batch it covered (fewer when it ran out of time).
        changed: ids of the documents written, by identity key.
        read: the positions it read from the server.
        moved: the positions it moved, key -> (stream id, version).
        lease_expires_at: the lease expiry its checkpoint update set.
        filled: how many events it fetched to fill gaps the feed left.
        lost: how many of those had a handler (events the feed should have delivered).
    """

    consumed: int
    changed: dict[Hashable, Any] = field(default_factory=dict)
    read: dict[Hashable, int] = field(default_factory=dict)
    moved: dict[Hashable, tuple[Any, int]] = field(default_factory=dict)
    lease_expires_at: datetime | None = None
    filled: int = 0
    lost: int = 0


class BatchApplier:
    """Applies batches of one projection to one of its collections.

    Args:
        projection: the projection.
        store: the projection store (documents, positions, checkpoints, parked events).
        lease: the worker's lease (its fence goes into every checkpoint update).
        events: the events collection (for gap fills and undecodable replays).
        max_seconds: how long one batch may run its handlers before it commits.
    """

    def __init__(
        self,
        projection: Projection,
        store: MongoProjectionStore,
        lease: ProjectionLease,
        events: Any,
        max_seconds: float,
    ) -> None:
        self.projection = projection
        self.store = store
        self.lease = lease
        self.events = events
        self.max_seconds = max_seconds

    async def apply(
        self, uow: MongoUnitOfWork, collection: str, items: Sequence[FeedItem]
    ) -> BatchResult:
        """Apply ``items`` in ``uow``'s transaction (see the module docstring).

        Raises:
            HandlerFailed: an event's handler (or its update, or a gap that cannot be
                filled) failed; the caller retries or parks it.
            ProjectionLeaseLost: another worker holds the lease now.
        """
        started = time.monotonic()
        session = uow.session
        keys = [identity_key(item.event.stream_id) for item in items]  # once per event
        sids = [item.event.stream_id for item in items]  # a list: no generator step per event
        stream_ids = list(dict(zip(keys, sids, strict=True)).values())
        held = await self.store.held_streams(collection, stream_ids, session=session)
        positions = await self.store.positions.load(
            collection, stream_ids, session=session, unapplied=_first_reads(items, keys)
        )
        result = BatchResult(consumed=len(items), read=dict(positions))
        fills = await self._gap_fills(items, keys, positions, held, session, result)
        ctx = self.store.context(collection, session)
        for index, item in enumerate(items):
            if index and time.monotonic() - started > self.max_seconds:
                result.consumed = index
                break
            await self._apply_item(
                ctx, collection, item, keys[index], index, positions, held, fills, result
            )
        try:
            await ctx.flush()
        except StagedWriteError as exc:
            raise HandlerFailed(exc.owner, exc) from exc
        await self.store.positions.save(collection, result.moved, session=session)
        await self.checkpoint(uow, collection, items[result.consumed - 1], result.consumed, result)
        result.changed = ctx.changed
        return result

    async def checkpoint(
        self,
        uow: MongoUnitOfWork,
        collection: str,
        item: FeedItem,
        events: int,
        result: BatchResult | None = None,
    ) -> None:
        """Move the checkpoint past ``item`` and renew the lease, fenced by its token.

        Raises:
            ProjectionLeaseLost: the lease's token is not ours any more.
        """
        expires_at = self.lease.next_expiry()
        written = await self.store.save_checkpoint(
            collection,
            item.position,
            events,
            session=uow.session,
            fence=self.lease.fence(),
            lease_expires_at=expires_at,
        )
        if not written:
            raise self.lease.lost(collection)
        if result is not None:
            result.lease_expires_at = expires_at

    async def _apply_item(
        self,
        ctx: MongoProjectionContext,
        collection: str,
        item: FeedItem,
        key: Hashable,
        index: int,
        positions: dict[Hashable, int],
        held: dict[Hashable, int],
        fills: Mapping[tuple[Hashable, int], list[StoredEvent]],
        result: BatchResult,
    ) -> None:
        stored = item.event
        applied = positions.get(key, 0)
        if item.undecodable is not None:
            if 0 < stored.version <= applied:
                return  # decodable enough to know it was applied before
            await self.store.park(
                collection,
                stored,
                error=item.undecodable,
                attempts=0,
                held_behind=None,
                session=ctx.session,
                raw=item.raw,
            )
            held[key] = min(held.get(key, stored.version), stored.version)
            return
        if stored.version <= applied:
            return  # applied before: its handler must not run again
        first_parked = held.get(key)
        if first_parked is not None and stored.version >= first_parked:
            if stored.version > first_parked:
                await self.store.park(
                    collection,
                    stored,
                    error=None,
                    attempts=0,
                    held_behind=first_parked,
                    session=ctx.session,
                )
            return
        for filler in fills.get((key, stored.version), ()):
            await self.run_handler(ctx, filler, index)
            self._moved(positions, result, key, filler)
        if stored.version != positions.get(key, 0) + 1:
            gap = ProjectionGapError(
                f"Projection {self.projection.name!r}: event {stored.stream_id!r}"
                f"@{stored.version} follows version {positions.get(key, 0)} of its stream, "
                "and the events collection does not hold the versions in between."
            )
            raise HandlerFailed(index, gap)
        await self.run_handler(ctx, stored, index)
        self._moved(positions, result, key, stored)

    @staticmethod
    def _moved(
        positions: dict[Hashable, int], result: BatchResult, key: Hashable, stored: StoredEvent
    ) -> None:
        positions[key] = stored.version
        result.moved[key] = (stored.stream_id, stored.version)

    async def run_handler(
        self, ctx: MongoProjectionContext, stored: StoredEvent, index: int
    ) -> None:
        """Run ``stored``'s handler (if any) and stage its writes, tagged ``index``.

        Raises:
            HandlerFailed: the handler raised.
        """
        ctx.begin_event(stored)
        try:
            if await self.projection.apply(stored, ctx):
                ctx.stage_event(index)
            else:
                ctx.end_event()
        except Exception as exc:
            ctx.end_event()
            raise HandlerFailed(index, exc) from exc

    async def _gap_fills(
        self,
        items: Sequence[FeedItem],
        keys: Sequence[Hashable],
        positions: Mapping[Hashable, int],
        held: Mapping[Hashable, int],
        session: Any,
        result: BatchResult,
    ) -> dict[tuple[Hashable, int], list[StoredEvent]]:
        """For each event the batch cannot apply yet because versions before it are missing,
        the stream's events in between, read in one query (empty when there is no gap)."""
        expected = dict(positions)
        gaps: list[tuple[Any, Hashable, int, int]] = []
        for item, key in zip(items, keys, strict=True):
            if item.undecodable is not None:
                continue
            stored = item.event
            last = expected.get(key, 0)
            if stored.version <= last or (key in held and stored.version >= held[key]):
                continue
            if stored.version > last + 1:
                gaps.append((stored.stream_id, key, last, stored.version))
            expected[key] = stored.version
        if not gaps:
            return {}
        query = gap_filter([(sid, low, high) for sid, _, low, high in gaps])
        # Hinted: without it the embedded server answers an $or of ranges with a scan.
        cursor = self.events.find(query, session=session, sort=STREAM_ORDER, hint=STREAM_ORDER)
        found: dict[Hashable, list[tuple[StoredEvent, str | None]]] = {}
        for document in await driver.to_list(cursor):
            found.setdefault(identity_key(document.get("stream_id")), []).append(
                decode_event(document)
            )
        handled = self.projection.handled_event_types
        fills: dict[tuple[Hashable, int], list[StoredEvent]] = {}
        for _, key, low, high in gaps:
            between = [(e, r) for e, r in found.get(key, []) if low < e.version < high]
            if [e.version for e, _ in between] != list(range(low + 1, high)):
                continue  # the store itself misses versions: the event is parked as a gap
            if any(reason is not None for _, reason in between):
                continue  # an undecodable event in between: parked with the gap error
            fills[(key, high)] = [e for e, _ in between]
            result.filled += len(between)
            result.lost += sum(1 for e, _ in between if e.event_type in handled)
        return fills


def _first_reads(items: Sequence[FeedItem], keys: Sequence[Hashable]) -> set[Hashable]:
    """The streams whose position is known to be 0 without reading it.

    In a fresh catch-up round (started with no stored positions) the feed reads each stream
    once, in version order, from the durable checkpoint on: a stream whose first event in
    the batch is its version 1 has not been applied by anyone yet. (The worker forgets its
    feed position after any batch whose outcome it cannot be sure of, so it never re-reads
    from behind the checkpoint.)
    """
    if not items or not items[0].position.fresh or items[0].position.streaming:
        return set()
    seen: set[Hashable] = set()
    unapplied: set[Hashable] = set()
    for item, key in zip(items, keys, strict=True):
        if key in seen:
            continue
        seen.add(key)
        if item.undecodable is None and item.event.version == 1:
            unapplied.add(key)
    return unapplied
