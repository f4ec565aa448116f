"""The projection worker's maintenance operations: parked-event replay and rebuilds.

Functions of a :class:`MongoProjectionWorker`, which exposes them as methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cqrs_mongo.errors import ProjectionError, ProjectionGapError, ProjectionLeaseLost
from cqrs_mongo.eventsourcing import StoredEvent
from cqrs_mongo.mongo.projections.batch_applier import BatchResult, HandlerFailed
from cqrs_mongo.mongo.projections.event_feed import decode_event
from cqrs_mongo.mongo.projections.projection_store import StagedWriteError
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork
from cqrs_mongo.projections import ParkedEvent, identity_key

if TYPE_CHECKING:
    from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker


# --- parked events -------------------------------------------------------------------


async def parked(worker: MongoProjectionWorker, stream_id: Any = None) -> list[ParkedEvent]:
    """The events parked for this projection's collection (of one stream if given)."""
    return await worker.store.parked(await worker._target(), stream_id)


async def replay_parked(worker: MongoProjectionWorker, stream_id: Any = None) -> int:
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
    async with worker._lock:
        collection = await worker._target()
        if not await worker._hold_lease(collection):
            info = await worker.lease.info(collection)
            raise ProjectionLeaseLost(
                f"Projection {worker.name!r}: worker {info.owner} holds the lease until "
                f"{info.expires_at}; replay parked events there, or after it stops."
            )
        streams = (
            [stream_id]
            if stream_id is not None
            else await worker.store.parked_stream_ids(collection)
        )
        applied = 0
        try:
            for each in streams:
                applied += await _replay_stream(worker, collection, each)
        finally:
            await worker.release_if_idle()
        return applied


async def _replay_stream(worker: MongoProjectionWorker, collection: str, stream_id: Any) -> int:
    applied = 0
    while parked := await worker.store.parked_events_of(collection, stream_id):
        stored, raw = parked[0]
        try:
            result = await worker._transaction(_replay_one_in(worker), stored, raw)
        except HandlerFailed as failed:
            await worker.store.record_failure(collection, stored, _describe(failed.error), 1)
            break
        await worker._committed(collection, result)
        applied += 1
    return applied


async def _replay_one(
    worker: MongoProjectionWorker,
    uow: MongoUnitOfWork,
    parked: StoredEvent,
    raw: Mapping[str, Any] | None,
) -> BatchResult:
    collection = worker._require_collection()
    stored = parked if raw is None else await _reread(worker, uow, raw)
    key = identity_key(stored.stream_id)
    positions = await worker.store.positions.load(
        collection, [stored.stream_id], session=uow.session
    )
    result = BatchResult(consumed=1, read=dict(positions))
    ctx = worker.store.context(collection, uow.session)
    if stored.version > positions[key]:
        if stored.version != positions[key] + 1:
            raise HandlerFailed(
                0,
                ProjectionGapError(
                    f"Parked event {stored.stream_id!r}@{stored.version} follows version "
                    f"{positions[key]} of its stream; expected version "
                    f"{positions[key] + 1} first."
                ),
            )
        await worker.applier.run_handler(ctx, stored, 0)
        try:
            await ctx.flush()
        except StagedWriteError as exc:
            raise HandlerFailed(0, exc) from exc
        result.moved[key] = (stored.stream_id, stored.version)
        await worker.store.positions.save(collection, result.moved, session=uow.session)
    await worker.store.unpark(collection, parked, session=uow.session)
    expires_at = worker.lease.next_expiry()
    fenced = await worker.store.checkpoints.update_one(
        {"_id": collection, **worker.lease.fence()},
        {"$set": {"lease.expires_at": expires_at}},
        session=uow.session,
    )
    if fenced.matched_count == 0:
        raise worker.lease.lost(collection)
    result.lease_expires_at = expires_at
    result.changed = ctx.changed
    return result


async def _reread(
    worker: MongoProjectionWorker, uow: MongoUnitOfWork, raw: Mapping[str, Any]
) -> StoredEvent:
    current = await worker.database[worker.events_collection].find_one(
        {"_id": raw.get("_id")}, session=uow.session
    )
    event, reason = decode_event(current if current is not None else raw)
    if reason is not None:
        raise HandlerFailed(0, ProjectionError(reason))
    return event


# --- rebuild -------------------------------------------------------------------------


async def rebuild(worker: MongoProjectionWorker, *, drop_previous: bool = False) -> str:
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
    from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker

    await worker._require_replica_set()
    generation = await worker.store.generation(worker.name) + 1
    target = f"{worker.name}__v{generation}"
    await worker.database.drop_collection(target)
    await worker.store.delete_checkpoint(target)
    shadow = MongoProjectionWorker(
        worker.projection,
        worker.factory,
        events_collection=worker.events_collection,
        store=worker.store,
        batch_size=worker.batch_size,
        retry=worker.retry,
        max_await_ms=worker.max_await_ms,
        collection=target,
        lease_seconds=worker.lease.seconds,
        max_commit_ms=worker.max_commit_ms,
    )
    try:
        await shadow.run_until_caught_up()
        async with worker._lock:
            await shadow.run_until_caught_up()
            previous = await worker._target()
            await worker._transaction(_switch_in(worker), target, generation)
            await shadow.lease.release()
            await worker.lease.release()
            worker.collection, worker._position = target, None
            await worker.feed.close()
    finally:
        await shadow.feed.close()
        await shadow.lease.close()
    if drop_previous and previous != target:
        await worker.database.drop_collection(previous)
        await worker.store.delete_checkpoint(previous)
    return target


def _switch_in(worker: MongoProjectionWorker) -> Any:
    async def switch(uow: MongoUnitOfWork, target: str, generation: int) -> None:
        await worker.store.switch(worker.name, target, generation, session=uow.session)

    return switch


def _replay_one_in(worker: MongoProjectionWorker) -> Any:
    async def replay(
        uow: MongoUnitOfWork, parked: StoredEvent, raw: Mapping[str, Any] | None
    ) -> BatchResult:
        return await _replay_one(worker, uow, parked, raw)

    return replay


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text.splitlines()[0] if text else type(error).__name__
