"""The projection worker: feeds events to a projection in batches, exactly once, and rebuilds it.

Each batch is one transaction holding the projection documents it changed, the per-stream
positions it moved (:mod:`~cqrs_mongo.mongo.projections.stream_positions`) *and* the checkpoint
(the feed position after the batch's last event), whose update also renews the worker's lease
and is fenced by its token (:mod:`~cqrs_mongo.mongo.projections.lease`). A crash anywhere
leaves all or none of it. An event at or below its stream's position is skipped before its
handler runs, so handler runs are exactly-once whatever the feed repeats (catch-up joining
the change stream, a resume, a takeover); an event beyond position + 1 is a gap, filled from
the events collection before going on (:mod:`~cqrs_mongo.mongo.projections.batch_applier`).

History loss (the change stream cannot resume, or a gap shows the feed skipped events) starts
a repair round: a new catch-up read from a fresh cluster time. It re-reads the events but runs
handlers only for events past their stream's position, and it resumes from its own checkpoint
after a crash, so it converges instead of starting over.

Several workers may run for one projection: one holds the lease and applies batches, the
others are hot standbys that poll the lease and take over once it expires.

A failing event is retried alone with backoff; after ``RetryPolicy.max_attempts`` it is parked
(``parked_events``) together with the checkpoint moving past it, and later events of its
stream are parked behind it, so its stream stays in order while other streams go on. A stored
event that cannot be decoded is parked the same way, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bson import Timestamp

from cqrs_mongo.errors import ConfigurationError, ProjectionError, ProjectionLeaseLost
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.eventsourcing.event_store import DEFAULT_EVENTS_COLLECTION, MongoEventStore
from cqrs_mongo.mongo.indexes import IndexSpec
from cqrs_mongo.mongo.projections import worker_maintenance
from cqrs_mongo.mongo.projections.batch_applier import BatchApplier, BatchResult, HandlerFailed
from cqrs_mongo.mongo.projections.event_feed import (
    FeedHistoryLost,
    FeedItem,
    FeedPosition,
    MongoEventFeed,
)
from cqrs_mongo.mongo.projections.lease import PinnedUnitOfWork, ProjectionLease, default_owner
from cqrs_mongo.mongo.projections.projection_store import (
    MongoProjectionStore,
    checkpoint_position,
)
from cqrs_mongo.mongo.projections.worker_status import describe, worker_status
from cqrs_mongo.mongo.transactions.runner import RetryBudget, run_with_retries
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.persistence.hooks import Hooks, observed
from cqrs_mongo.projections import (
    AfterCommit,
    Lag,
    ParkedEvent,
    Projection,
    ProjectionStatus,
    RetryPolicy,
    WorkerLifecycle,
    WorkerState,
    run_after_commit,
)
from cqrs_mongo.projections.keys import hashable_id

logger = logging.getLogger("cqrs_mongo.mongo.projections.projection_worker")

DEFAULT_LEASE_SECONDS = 5.0

# No hooks of its own: the process-wide observers (tracing) alone watch batches.
_OBSERVERS = Hooks()


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
        store: where projection documents, positions, checkpoints, aliases and parked events
            live.
        batch_size: events per transaction, at most.
        retry: how a failing event is retried before it is parked.
        max_await_ms: how long one read waits on the change stream for new events.
        collection: pin the worker to this collection instead of following the alias.
        idle_checkpoint_seconds: while no event of the projection's types arrives, how often
            the checkpoint still moves on with the change stream (so it stays in the oplog).
        lease_seconds: how long the lease lasts without renewal; a standby takes over after
            it (plus up to ``standby_poll_seconds``).
        standby_poll_seconds: how often a standby checks the lease (default: a fifth of it).
        max_batch_seconds: how long one batch may run handlers before it commits (default:
            a third of the lease), so transactions stay short.
        max_commit_ms: ``maxCommitTimeMS`` of the batch transactions.
        worker_id: this worker's name in the lease (default ``host:pid:random``).
        after_commit: callbacks called with the ids of the documents each committed batch
            changed (see :meth:`add_after_commit`).
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
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        standby_poll_seconds: float | None = None,
        max_batch_seconds: float | None = None,
        max_commit_ms: int = 2_000,
        worker_id: str | None = None,
        after_commit: Iterable[AfterCommit] = (),
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
        self.collection: str | None = collection
        self.idle_checkpoint_seconds = idle_checkpoint_seconds
        self.lease = ProjectionLease(
            self.store.checkpoints, uow_factory.client, worker_id or default_owner(), lease_seconds
        )
        self.standby_poll_seconds = (
            standby_poll_seconds if standby_poll_seconds is not None else lease_seconds / 5
        )
        self.max_commit_ms = max_commit_ms
        self.applier = BatchApplier(
            projection,
            self.store,
            self.lease,
            self.database[events_collection],
            max_batch_seconds if max_batch_seconds is not None else lease_seconds / 3,
        )
        self._after_commit = list(after_commit)
        self._checkpointed_at = time.monotonic()
        self.last_error: BaseException | None = None
        self._position: FeedPosition | None = None
        self._prepared: set[str] = set()
        self._lock = asyncio.Lock()
        self._life = WorkerLifecycle(self.name)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._standby = False
        self.repairs = 0

    @property
    def state(self) -> WorkerState:
        """Whether the worker's loop is stopped, running or stopping."""
        return self._life.state

    def add_after_commit(self, callback: AfterCommit) -> None:
        """Call ``callback(changes)`` after each batch that changed documents has committed.

        ``changes`` maps a collection name to the ids of the documents the batch wrote: the
        physical collection (``order_summaries__v2`` after a rebuild) and, when it differs,
        the projection's name as well, with the same ids. A callback runs only after the
        commit; one that fails is logged and neither undoes nor repeats the batch.
        """
        self._after_commit.append(callback)

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
        self.last_error = None
        self._task = asyncio.create_task(self._loop(), name=f"projection:{self.name}")

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop the background task; stopping a stopped worker does nothing.

        ``graceful`` lets the batch in flight finish and gives the lease up, so a standby
        takes over at once; otherwise the task is cancelled where it stands, as a crash
        would stop it (its transaction is then rolled back) and the lease runs out. Either
        way the worker forgets its position and resumes from the checkpoint when started.
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
            self._forget()
            await self.feed.close()
            if graceful:
                with contextlib.suppress(Exception):
                    await self.lease.release()
            await self.lease.close()
            self._life.move_to(WorkerState.STOPPED)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_once()
                if self._standby:
                    await self._pause(self.standby_poll_seconds)
            except ProjectionLeaseLost as exc:
                self.last_error = exc
                logger.warning("Projection %r: %s", self.name, exc)
                self._position = None
            except Exception as exc:  # the loop must outlive a server outage
                self.last_error = exc
                logger.exception("Projection %r: batch failed; retrying.", self.name)
                await self._pause(1.0)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    # --- running -------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Read one batch of events and apply it in one transaction (as a standby: check
        the lease and do nothing else).

        Returns:
            How many events the batch held (0 when there was nothing new).

        Raises:
            TransactionError: the batch could not commit within the retry budget.
            ProjectionLeaseLost: another worker took the lease over mid-batch.
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
            ProjectionLeaseLost: another worker holds the projection's lease.
        """
        await self._require_replica_set()
        try:
            return await self._catch_up()
        finally:
            await self.release_if_idle()

    async def release_if_idle(self) -> None:
        """Give the lease up if the worker's loop is not running (after a one-off call such
        as :meth:`run_until_caught_up` or :meth:`replay_parked`), so that another worker,
        or a later call from elsewhere, need not wait for it to expire."""
        if self._life.state is WorkerState.STOPPED and self.lease.token is not None:
            self._forget()
            await self.feed.close()
            await self.lease.release()

    async def _catch_up(self) -> int:
        target = await self.feed.cluster_time()
        total = 0
        while True:
            async with self._lock:
                count, last = await self._step(covers=target)
            if self._standby:
                info = await self.lease.info(await self._target())
                raise ProjectionLeaseLost(
                    f"Projection {self.name!r}: worker {info.owner} holds the lease until "
                    f"{info.expires_at}; this worker ({self.lease.owner}) cannot catch up."
                )
            total += count
            if count == 0 and self._position is not None and not self._position.streaming:
                continue  # a repair round has just started: catch up with it too
            if count == 0 or (last is not None and last >= target):
                return total

    async def _step(self, covers: Timestamp | None = None) -> tuple[int, Timestamp | None]:
        collection = await self._target()
        if not await self._hold_lease(collection):
            return 0, None
        position = await self._prepare(covers)
        try:
            items, after = await self.feed.read(position, self.batch_size, covers=covers)
        except FeedHistoryLost as exc:
            await self._start_repair(f"the change stream cannot resume ({exc})")
            return 0, None
        if items:
            # One CONSUMER span per batch for tracers, linked to the spans that appended it.
            detail = self._batch_detail(items) if observed() else None
            async with _OBSERVERS.span("projection.batch", source=self.name, detail=detail):
                lost = await self._process(items)
            self._checkpointed_at = time.monotonic()
            self._position = after
            if lost and position.streaming:
                await self._start_repair(f"{lost} event(s) the change stream did not deliver")
        else:
            if after is not position and self._idle_checkpoint_due():
                await self._transaction(self._save_idle_checkpoint, after)
            elif self.lease.renewal_due():
                await self.lease.renew(collection)
            self._position = after
        return len(items), (items[-1].cluster_time if items else None)

    def _batch_detail(self, items: Sequence[FeedItem]) -> dict[str, Any]:
        return {
            "projection": self.name,
            "destination": self.events_collection,
            "batch_size": len(items),
            "trace_contexts": [i.event.trace_context for i in items if i.event.trace_context],
        }

    async def _hold_lease(self, collection: str) -> bool:
        if self.lease.held(collection):
            self._standby = False
            return True
        self._forget()  # what it remembers is only good for one unbroken term
        await self.feed.close()
        self._standby = not await self.lease.acquire(collection)
        return not self._standby

    async def _start_repair(self, reason: str) -> None:
        # A new catch-up read from a fresh cluster time; positions make it skip everything
        # applied already, and its checkpoints make it resume, not restart, after a crash.
        logger.warning("Projection %r: history lost, %s; catching up again.", self.name, reason)
        self.repairs += 1
        await self.feed.close()
        self._position = await self.feed.origin()

    def _idle_checkpoint_due(self) -> bool:
        return time.monotonic() - self._checkpointed_at >= self.idle_checkpoint_seconds

    async def _save_idle_checkpoint(self, uow: MongoUnitOfWork, position: FeedPosition) -> None:
        collection = self._require_collection()
        expires_at = self.lease.next_expiry()
        written = await self.store.save_checkpoint(
            collection,
            position,
            0,
            session=uow.session,
            fence=self.lease.fence(),
            lease_expires_at=expires_at,
        )
        if not written:
            raise self.lease.lost(collection)
        self.lease.renewed(expires_at)
        self._checkpointed_at = time.monotonic()

    async def _prepare(self, covers: Timestamp | None = None) -> FeedPosition:
        """The feed position to read from: the worker's own, else the stored checkpoint,
        else a first catch-up starting at ``covers`` (a cluster time read before it) or now.
        """
        collection = await self._target()
        if self._position is None:
            known, document = self.lease.acquired_checkpoint(collection)
            checkpoint = (
                checkpoint_position(document)
                if known
                else await self.store.load_checkpoint(collection)
            )
            if checkpoint is None and await self.store.positions.exist(collection):
                # Positions are written with the checkpoint: without one they are left from
                # a reset that deleted the checkpoint by hand. Kept, they would skip every
                # event of the rebuild-from-zero the missing checkpoint asks for.
                logger.warning(
                    "Projection %r: no checkpoint for %r but stream positions left over; "
                    "deleting them and starting from the first event.",
                    self.name,
                    collection,
                )
                await self.store.positions.delete(collection)
            if checkpoint is None:
                # No position is stored now, so none exists beyond the catch-up's keyset.
                checkpoint = (
                    FeedPosition(start_at=covers, fresh=True)
                    if covers is not None
                    else await self.feed.origin(fresh=True)
                )
            self._position = checkpoint
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
        # The catch-up walks the event store's (stream_id, version) index (its hint names it).
        await MongoEventStore(self.database, self.events_collection).ensure_indexes()
        self._prepared.add(collection)

    async def _transaction(self, handler: Any, *args: Any) -> Any:
        """Run ``handler(uow, *args)`` in a transaction on the worker's own session."""
        session = await self.lease.worker_session()
        factory = self.factory

        def unit() -> PinnedUnitOfWork:
            unit = PinnedUnitOfWork(
                session,
                client=factory.client,
                database_name=factory.database_name,
                source=factory.source,
                hooks=factory.hooks,
                read_concern=factory.read_concern,
                write_concern=factory.write_concern,
                commit_budget_seconds=factory.retry_budget_seconds,
                database=factory.database,
                transaction_timeout_seconds=factory.transaction_timeout_seconds,
                max_commit_seconds=min(factory.max_commit_seconds, self.max_commit_ms / 1000),
            )
            unit.factory = factory
            return unit

        budget = RetryBudget(factory.retry_budget_seconds, factory.max_attempts)
        try:
            return await run_with_retries(unit, handler, budget, factory.conflicts, *args)
        except HandlerFailed:
            raise  # raised inside the transaction, which was rolled back: nothing is in doubt
        except BaseException:
            # The transaction may have committed (committed without its write concern, an
            # unknown outcome, a cancellation mid-commit): what this worker remembers of
            # positions, parked streams and its feed position may be behind what is durable.
            # Forgetting it makes the next batch start from the stored checkpoint and read
            # positions inside its own snapshot, so nothing is applied twice.
            self._forget()
            raise

    def _forget(self) -> None:
        """Drop what the worker remembers between batches (its feed position, the positions
        and parked streams it read or wrote): the next batch starts from the checkpoint."""
        self._position = None
        self.store.positions.forget()
        self.store.forget_held()

    # --- batches -------------------------------------------------------------------------

    async def _process(self, items: Sequence[FeedItem]) -> int:
        """Apply ``items`` in as many transactions as needed; returns how many events had
        to be fetched because the feed skipped them."""
        lost = 0
        while items:
            try:
                result: BatchResult = await self._transaction(self._apply_batch, items)
            except HandlerFailed as failed:
                index, error = failed.index, failed.error
                if index:
                    lost += await self._process(items[:index])
                await self._retry_or_park(items[index], error)
                items = items[index + 1 :]
                continue
            await self._committed(self._require_collection(), result)
            lost += result.lost
            items = items[result.consumed :]
        return lost

    async def _apply_batch(self, uow: MongoUnitOfWork, items: Sequence[FeedItem]) -> BatchResult:
        return await self.applier.apply(uow, self._require_collection(), items)

    async def _committed(self, collection: str, result: BatchResult) -> None:
        """Bookkeeping after a batch committed: positions cache, lease, callbacks."""
        self.store.positions.remember(collection, result.read, result.moved)
        if result.lease_expires_at is not None:
            self.lease.renewed(result.lease_expires_at)
        await self._notify(collection, result.changed)

    async def _notify(self, collection: str, changed: Mapping[Hashable, Any]) -> None:
        if not changed or not self._after_commit:
            return
        ids = frozenset(hashable_id(doc_id) for doc_id in changed.values())
        changes = {collection: ids}
        if self.name != collection:
            changes[self.name] = ids
        await run_after_commit(self._after_commit, changes, self.name)

    async def _retry_or_park(self, item: FeedItem, error: BaseException) -> None:
        attempts = 1
        while attempts < self.retry.max_attempts:
            await asyncio.sleep(self.retry.delay(attempts))
            attempts += 1
            try:
                result = await self._transaction(self._apply_batch, [item])
                await self._committed(self._require_collection(), result)
                return
            except HandlerFailed as failed:
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
        await self._transaction(self._park, item, describe(error), attempts)

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
        await self.applier.checkpoint(uow, collection, item, 1)

    def _require_collection(self) -> str:
        if self.collection is None:  # pragma: no cover - _prepare always runs first
            raise ProjectionError(f"Projection {self.name!r}: no collection resolved yet.")
        return self.collection

    # --- parked events and rebuild -------------------------------------------------------

    async def parked(self, stream_id: Any = None) -> list[ParkedEvent]:
        """The events parked for this projection's collection (of one stream if given)."""
        return await worker_maintenance.parked(self, stream_id)

    async def replay_parked(self, stream_id: Any = None) -> int:
        """Apply parked events again (of one stream, or of all), each stream in version order.

        A stream's replay stops at the first event that fails again; it stays parked with
        the new error, and so do the events behind it. An event parked because it could not
        be decoded is read again from the events collection (it may have been repaired).

        Returns:
            How many parked events were applied.

        Raises:
            TransactionError: a replay could not commit within the retry budget.
            ProjectionLeaseLost: another worker holds the projection's lease.
        """
        return await worker_maintenance.replay_parked(self, stream_id)

    async def rebuild(self, *, drop_previous: bool = False) -> str:
        """Replay every event into a fresh collection, then switch readers to it.

        The new collection (``<name>__v<generation>``) is filled while the current one keeps
        serving readers and keeps being updated; when it has caught up, readers switch in
        one alias write (details: :func:`worker_maintenance.rebuild`). After-commit callbacks
        are not called for the new collection's batches nor for the switch: a cache of the
        projection should be dropped when a rebuild returns.

        Returns:
            The name of the new collection.

        Raises:
            TransactionError: a batch could not commit within the retry budget.
        """
        return await worker_maintenance.rebuild(self, drop_previous=drop_previous)

    # --- lag and status ------------------------------------------------------------------

    async def lag(self, cap: int = 10_000) -> Lag:
        """How many committed events this projection has not applied yet, and how old the
        oldest is (counting stops at ``cap``).

        While the checkpoint is a catch-up position the count is a lower bound: it counts the
        events ahead of the catch-up's ``(stream_id, version)`` key, not those appended
        meanwhile to streams the catch-up has already passed (the change stream delivers
        them once the catch-up ends, so none is lost; they are just not counted yet).

        Raises:
            FeedHistoryLost: the checkpoint is no longer in the oplog (the worker will catch
                up again).
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

    async def status(self) -> ProjectionStatus:
        """What the worker is doing, how far behind it is, and who holds the lease.

        A worker whose loop task died reports ``failed`` with the error, whatever its
        lifecycle state says. Never raises for a database failure: what could not be read
        is ``None`` and the failure goes into ``last_error``.
        """
        return await worker_status(self)

    @property
    def standby(self) -> bool:
        """Whether the last step found another worker holding the lease."""
        return self._standby

    @property
    def loop_task(self) -> asyncio.Task[None] | None:
        """The background task while started."""
        return self._task

    @property
    def position(self) -> FeedPosition | None:
        """The feed position the worker has applied up to (``None`` before it read one)."""
        return self._position

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
