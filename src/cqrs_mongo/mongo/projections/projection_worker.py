"""The projection worker: feeds events to a projection in batches, exactly once, and rebuilds it.

Each batch is one transaction holding the projection documents it changed *and* the
checkpoint (the feed position after the batch's last event). A crash anywhere therefore
leaves either both or neither: on restart the worker resumes from the checkpoint, and an
event whose effects committed is never applied again, while one whose effects did not commit
is applied. The per-stream version guard of the projection store makes any overlap (catch-up
joining the change stream, a resume after lost history, two workers racing) harmless.

A failing event is retried alone with backoff; after ``RetryPolicy.max_attempts`` it is parked
(``parked_events``) together with the checkpoint moving past it, and later events of its
stream are parked behind it, so its stream stays in order while other streams go on.
:meth:`MongoProjectionWorker.replay_parked` applies a stream's parked events in order once
the handler is fixed.

Run one worker per projection: two would not corrupt anything (the guard and the checkpoint's
write conflicts see to that), but they would do the work twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bson import Timestamp

from cqrs_mongo.errors import ConfigurationError, ProjectionError
from cqrs_mongo.eventsourcing import StoredEvent
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.eventsourcing.event_store import DEFAULT_EVENTS_COLLECTION
from cqrs_mongo.mongo.indexes import IndexSpec
from cqrs_mongo.mongo.projections.event_feed import (
    FeedHistoryLost,
    FeedItem,
    FeedPosition,
    MongoEventFeed,
)
from cqrs_mongo.mongo.projections.projection_store import (
    MongoProjectionStore,
    StagedWriteError,
    stream_lookup_key,
)
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.persistence.hooks import Hooks, observed
from cqrs_mongo.projections import (
    Lag,
    ParkedEvent,
    Projection,
    RetryPolicy,
    WorkerLifecycle,
    WorkerState,
)

logger = logging.getLogger("cqrs_mongo.mongo.projections.projection_worker")

# No hooks of its own: the process-wide observers (tracing) alone watch batches.
_OBSERVERS = Hooks()


class _HandlerFailed(Exception):
    """The event at ``index`` of a batch failed; the batch's transaction is rolled back."""

    def __init__(self, index: int, error: BaseException) -> None:
        self.index = index
        self.error = error
        super().__init__(f"Event {index} of the batch failed: {error}")


class MongoProjectionWorker:
    """Keeps one projection's collection up to date with the events collection.

    Example:
        >>> factory = MongoUnitOfWorkFactory(client, "shop")  # doctest: +SKIP
        >>> worker = MongoProjectionWorker(OrderSummaries(), factory)  # doctest: +SKIP
        >>> await worker.start()  # doctest: +SKIP
        >>> await worker.lag()  # doctest: +SKIP
        Lag(events=0, seconds=0.0, capped=False)

    Args:
        projection: the projection to feed.
        uow_factory: makes the units of work batches run in (a transaction-capable deployment).
        events_collection: the events collection.
        store: where projection documents, checkpoints, aliases and parked events live.
        batch_size: events per transaction.
        retry: how a failing event is retried before it is parked.
        max_await_ms: how long one read waits on the change stream for new events.
        collection: pin the worker to this collection instead of following the alias.
        idle_checkpoint_seconds: while no event of the projection's types arrives, how often
            the checkpoint still moves on with the change stream (so it stays in the oplog).
    """

    def __init__(
        self,
        projection: Projection,
        uow_factory: MongoUnitOfWorkFactory,
        *,
        events_collection: str = DEFAULT_EVENTS_COLLECTION,
        store: MongoProjectionStore | None = None,
        batch_size: int = 100,
        retry: RetryPolicy | None = None,
        max_await_ms: int = 100,
        collection: str | None = None,
        idle_checkpoint_seconds: float = 60.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.projection = projection
        self.name = projection.name
        self.factory = uow_factory
        self.database = uow_factory.database
        self.events_collection = events_collection
        self.store = store if store is not None else MongoProjectionStore(self.database)
        self.batch_size = batch_size
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_await_ms = max_await_ms
        self.feed = self._new_feed()
        self.collection = collection
        self.idle_checkpoint_seconds = idle_checkpoint_seconds
        self._checkpointed_at = time.monotonic()
        self.last_error: BaseException | None = None
        self._position: FeedPosition | None = None
        self._prepared: set[str] = set()
        self._lock = asyncio.Lock()
        self._life = WorkerLifecycle(self.name)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def state(self) -> WorkerState:
        """Whether the worker's loop is stopped, running or stopping."""
        return self._life.state

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Run the worker in a background task until :meth:`stop`.

        Raises:
            ProjectionError: the worker is already running.
            ConfigurationError: the deployment has no transactions or change streams.
        """
        await self._require_replica_set()
        self._life.move_to(WorkerState.RUNNING)
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name=f"projection:{self.name}")

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop the background task; stopping a stopped worker does nothing.

        ``graceful`` lets the batch in flight finish; otherwise the task is cancelled where
        it stands, as a crash would stop it (its transaction is then rolled back). Either way
        the worker forgets its position and resumes from the checkpoint when started again.
        """
        if self._life.state is not WorkerState.RUNNING or self._task is None:
            return
        self._life.move_to(WorkerState.STOPPING)
        self._stopping.set()
        task, self._task = self._task, None
        if not graceful:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
        finally:
            self._position = None
            await self.feed.close()
            self._life.move_to(WorkerState.STOPPED)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # the loop must outlive a server outage
                self.last_error = exc
                logger.exception("Projection %r: batch failed; retrying.", self.name)
                await self._pause(1.0)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # --- running -------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Read one batch of events and apply it in one transaction.

        Returns:
            How many events the batch held (0 when there was nothing new).

        Raises:
            TransactionError: the batch could not commit within the retry budget.
        """
        async with self._lock:
            count, _ = await self._step()
            return count

    async def run_until_caught_up(self) -> int:
        """Apply batches until every event committed before the call has been applied.

        Returns:
            How many events were read.

        Raises:
            TransactionError: a batch could not commit within the retry budget.
            ConfigurationError: the deployment has no transactions or change streams.
        """
        await self._require_replica_set()
        target = await self.feed.cluster_time()
        total = 0
        while True:
            async with self._lock:
                count, last = await self._step()
            total += count
            if count == 0 or (last is not None and last >= target):
                return total

    async def _step(self) -> tuple[int, Timestamp | None]:
        position = await self._prepare()
        try:
            items, after = await self.feed.read(position, self.batch_size)
        except FeedHistoryLost:
            logger.warning(
                "Projection %r: checkpoint left the oplog; catching up again.", self.name
            )
            self._position = await self.feed.origin()
            return 0, None
        if items:
            # One CONSUMER span per batch for tracers, linked to the spans that appended it.
            detail = self._batch_detail(items) if observed() else None
            async with _OBSERVERS.span("projection.batch", source=self.name, detail=detail):
                await self._process(items)
            self._checkpointed_at = time.monotonic()
        elif after is not position and self._idle_checkpoint_due():
            await self.factory.run(self._save_idle_checkpoint, after)
        self._position = after
        return len(items), (items[-1].cluster_time if items else None)

    def _batch_detail(self, items: Sequence[FeedItem]) -> dict[str, Any]:
        return {
            "projection": self.name,
            "destination": self.events_collection,
            "batch_size": len(items),
            "trace_contexts": [i.event.trace_context for i in items if i.event.trace_context],
        }

    def _idle_checkpoint_due(self) -> bool:
        return time.monotonic() - self._checkpointed_at >= self.idle_checkpoint_seconds

    async def _save_idle_checkpoint(self, uow: MongoUnitOfWork, position: FeedPosition) -> None:
        await self.store.save_checkpoint(
            self._require_collection(), position, 0, session=uow.session
        )
        self._checkpointed_at = time.monotonic()

    async def _prepare(self) -> FeedPosition:
        collection = await self._target()
        if self._position is None:
            checkpoint = await self.store.load_checkpoint(collection)
            self._position = checkpoint if checkpoint is not None else await self.feed.origin()
        return self._position

    async def _target(self) -> str:
        if self.collection is None:
            self.collection = await self.store.collection_for(self.name)
        await self._ensure_indexes(self.collection)
        return self.collection

    async def _ensure_indexes(self, collection: str) -> None:
        if collection in self._prepared:
            return
        models = [
            spec.to_model() if isinstance(spec, IndexSpec) else spec
            for spec in self.projection.indexes
        ]
        if models:
            await self.database[collection].create_indexes(models)
        await self.store.ensure_indexes()
        self._prepared.add(collection)

    # --- batches -------------------------------------------------------------------------

    async def _process(self, items: Sequence[FeedItem]) -> None:
        try:
            await self.factory.run(self._apply_batch, items)
            return
        except _HandlerFailed as failed:
            index, error = failed.index, failed.error
        if index:
            await self._process(items[:index])
        await self._retry_or_park(items[index], error)
        if index + 1 < len(items):
            await self._process(items[index + 1 :])

    async def _apply_batch(self, uow: MongoUnitOfWork, items: Sequence[FeedItem]) -> None:
        collection = self._require_collection()
        held = await self.store.held_streams(
            collection, {item.event.stream_id for item in items}, session=uow.session
        )
        ctx = self.store.context(collection, uow.session)
        for index, item in enumerate(items):
            stored = item.event
            first_parked = held.get(stream_lookup_key(stored.stream_id))
            if first_parked is not None and stored.version >= first_parked:
                if stored.version > first_parked:
                    await self.store.park(
                        collection,
                        stored,
                        error=None,
                        attempts=0,
                        held_behind=first_parked,
                        session=uow.session,
                    )
                continue
            await self._apply_one(ctx, stored, index)
        try:
            await ctx.flush()
        except StagedWriteError as exc:
            raise _HandlerFailed(exc.owner, exc) from exc
        await self.store.save_checkpoint(
            collection, items[-1].position, len(items), session=uow.session
        )

    async def _apply_one(self, ctx: Any, stored: StoredEvent, index: int) -> None:
        ctx.begin_event(stored)
        try:
            if await self.projection.apply(stored, ctx):
                ctx.stage_event(index)
            else:
                ctx.end_event()
        except Exception as exc:
            raise _HandlerFailed(index, exc) from exc

    async def _retry_or_park(self, item: FeedItem, error: BaseException) -> None:
        attempts = 1
        while attempts < self.retry.max_attempts:
            await asyncio.sleep(self.retry.delay(attempts))
            attempts += 1
            try:
                await self.factory.run(self._apply_batch, [item])
                return
            except _HandlerFailed as failed:
                error = failed.error
        stored = item.event
        logger.error(
            "Projection %r: parking %s %r@%d after %d attempts: %s",
            self.name,
            stored.event_type,
            stored.stream_id,
            stored.version,
            attempts,
            error,
        )
        await self.factory.run(self._park, item, _describe(error), attempts)

    async def _park(self, uow: MongoUnitOfWork, item: FeedItem, error: str, attempts: int) -> None:
        collection = self._require_collection()
        await self.store.park(
            collection,
            item.event,
            error=error,
            attempts=attempts,
            held_behind=None,
            session=uow.session,
        )
        await self.store.save_checkpoint(collection, item.position, 1, session=uow.session)

    def _require_collection(self) -> str:
        if self.collection is None:  # pragma: no cover - _prepare always runs first
            raise ProjectionError(f"Projection {self.name!r}: no collection resolved yet.")
        return self.collection

    # --- parked events -------------------------------------------------------------------

    async def parked(self, stream_id: Any = None) -> list[ParkedEvent]:
        """The events parked for this projection's collection (of one stream if given)."""
        return await self.store.parked(await self._target(), stream_id)

    async def replay_parked(self, stream_id: Any = None) -> int:
        """Apply parked events again (of one stream, or of all), each stream in version order.

        A stream's replay stops at the first event that fails again; it stays parked with
        the new error, and so do the events behind it.

        Returns:
            How many parked events were applied.

        Raises:
            TransactionError: a replay could not commit within the retry budget.
        """
        async with self._lock:
            collection = await self._target()
            streams = (
                [stream_id]
                if stream_id is not None
                else await self.store.parked_stream_ids(collection)
            )
            applied = 0
            for each in streams:
                applied += await self._replay_stream(collection, each)
            return applied

    async def _replay_stream(self, collection: str, stream_id: Any) -> int:
        applied = 0
        while parked := await self.store.parked_events_of(collection, stream_id):
            stored, _ = parked[0]
            try:
                await self.factory.run(self._replay_one, stored)
            except _HandlerFailed as failed:
                await self.store.record_failure(collection, stored, _describe(failed.error), 1)
                break
            applied += 1
        return applied

    async def _replay_one(self, uow: MongoUnitOfWork, stored: StoredEvent) -> None:
        collection = self._require_collection()
        ctx = self.store.context(collection, uow.session)
        await self._apply_one(ctx, stored, 0)
        try:
            await ctx.flush()
        except StagedWriteError as exc:
            raise _HandlerFailed(0, exc) from exc
        await self.store.unpark(collection, stored, session=uow.session)

    # --- lag and rebuild -----------------------------------------------------------------

    async def lag(self, cap: int = 10_000) -> Lag:
        """How many committed events this projection has not applied yet, and how old the
        oldest is (counting stops at ``cap``).

        Raises:
            FeedHistoryLost: the checkpoint is no longer in the oplog (the worker will catch
                up from the start).
        """
        position = self._position
        if position is None:
            position = await self.store.load_checkpoint(await self._target())
        if position is None:
            position = FeedPosition(start_at=Timestamp(0, 0))
        count, oldest, capped = await self.feed.pending(position, cap)
        seconds = 0.0
        if oldest is not None:
            seconds = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        return Lag(events=count, seconds=seconds, capped=capped)

    async def rebuild(self, *, drop_previous: bool = False) -> str:
        """Replay every event into a fresh collection, then switch readers to it.

        The new collection (``<name>__v<generation>``) is filled while the current one keeps
        serving readers and keeps being updated. When the new one has caught up, the worker
        pauses between batches, lets it catch up with the last events, and switches the
        alias in one write, so readers go from the old complete model to the new caught-up
        one with no empty or partial state in between. The worker then carries on with the
        new collection.

        Args:
            drop_previous: drop the previous collection after the switch (readers that
                resolved the alias just before it may then find it empty, so the default
                keeps it).

        Returns:
            The name of the new collection.

        Raises:
            TransactionError: a batch could not commit within the retry budget.
        """
        await self._require_replica_set()
        generation = await self.store.generation(self.name) + 1
        target = f"{self.name}__v{generation}"
        await self.database.drop_collection(target)
        await self.store.delete_checkpoint(target)
        shadow = MongoProjectionWorker(
            self.projection,
            self.factory,
            events_collection=self.events_collection,
            store=self.store,
            batch_size=self.batch_size,
            retry=self.retry,
            max_await_ms=self.max_await_ms,
            collection=target,
        )
        try:
            await shadow.run_until_caught_up()
            async with self._lock:
                await shadow.run_until_caught_up()
                previous = await self._target()
                await self.factory.run(self._switch, target, generation)
                self.collection, self._position = target, None
                await self.feed.close()
        finally:
            await shadow.feed.close()
        if drop_previous and previous != target:
            await self.database.drop_collection(previous)
            await self.store.delete_checkpoint(previous)
        return target

    async def _switch(self, uow: MongoUnitOfWork, target: str, generation: int) -> None:
        await self.store.switch(self.name, target, generation, session=uow.session)

    def _new_feed(self) -> MongoEventFeed:
        return MongoEventFeed(
            self.database,
            self.events_collection,
            event_types=self.projection.handled_event_types,
            max_await_ms=self.max_await_ms,
        )

    async def _require_replica_set(self) -> None:
        caps = await driver.capabilities(self.factory.client)
        if not caps.transactions:
            raise ConfigurationError(
                f"Projection worker {self.name!r} needs transactions and change streams: "
                f"expected a replica set or sharded cluster, found {caps.topology}."
            )


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text.splitlines()[0] if text else type(error).__name__
