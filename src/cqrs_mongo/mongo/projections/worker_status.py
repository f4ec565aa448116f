"""What a projection worker reports about itself: :class:`ProjectionStatus`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from cqrs_mongo.projections import ProjectionStatus, WorkerState
from cqrs_mongo.projections.lifecycle import StatusState

if TYPE_CHECKING:
    from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker


async def worker_status(worker: MongoProjectionWorker) -> ProjectionStatus:
    """The status of ``worker``: state, lag, checkpoint age, parked events, lease.

    A worker whose loop task died reports ``failed`` with the task's error. A database
    failure while reading the numbers leaves them ``None`` and goes into ``last_error``.
    """
    error = worker.last_error
    state = status_state(worker)
    task = worker.loop_task
    if state == "failed" and task is not None and task.done() and not task.cancelled():
        error = task.exception() or error
    lag_events: int | None = None
    lag_seconds: float | None = None
    checkpoint_age: float | None = None
    parked = 0
    owner: str | None = None
    expires_at: datetime | None = None
    try:
        collection = worker.collection or await worker.store.collection_for(worker.name)
        document = await worker.store.checkpoint_document(collection) or {}
        lease = document.get("lease") or {}
        owner, expires_at = lease.get("owner"), lease.get("expires_at")
        if document.get("at") is not None:
            checkpoint_age = max(0.0, (datetime.now(UTC) - document["at"]).total_seconds())
        parked = await worker.store.parked_count(collection)
        lag = await worker.lag()
        lag_events, lag_seconds = lag.events, lag.seconds
    except Exception as exc:  # a status report must not fail with the database
        error = error or exc
    return ProjectionStatus(
        name=worker.name,
        state=state,
        lag_events=lag_events,
        lag_seconds=lag_seconds,
        checkpoint_age_seconds=checkpoint_age,
        parked=parked,
        last_error=None if error is None else describe(error),
        lease_owner=owner,
        lease_expires_at=expires_at,
    )


def status_state(worker: MongoProjectionWorker) -> StatusState:
    """``stopped``, ``failed`` (loop task gone while running), ``standby``, ``streaming`` or
    ``catching_up``."""
    if worker.state is WorkerState.STOPPED:
        return "stopped"
    task = worker.loop_task
    if task is None or task.done():
        return "failed"
    collection = worker.collection
    if worker.standby or (collection is not None and not worker.lease.held(collection)):
        return "standby"
    position = worker.position
    if position is not None and position.streaming:
        return "streaming"
    return "catching_up"


def describe(error: BaseException) -> str:
    """``Type: message``, first line only."""
    text = f"{type(error).__name__}: {error}"
    return text.splitlines()[0] if text else type(error).__name__
