"""Undecodable events, status and after-commit callbacks of the projection worker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory
from cqrs_mongo.projections import Projection, ProjectionContext, ProjectionStatus

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]


class Added(DomainEvent):
    amount: int


class Sums(Projection):
    name = "sums"

    async def on_Added(self, event: Added, ctx: ProjectionContext) -> None:
        await ctx.upsert(
            ctx.stream_id, {"$inc": {"total": event.amount}, "$push": {"v": ctx.version}}
        )


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, retry_budget_seconds=60)


def stored(stream_id: Any, version: int, amount: int, **override: Any) -> dict[str, Any]:
    document = {
        "_id": uuid.uuid4(),
        "stream_id": stream_id,
        "stream_type": "Sum",
        "version": version,
        "event_type": "Added",
        "schema_version": 1,
        "payload": {"amount": amount},
        "metadata": {"correlation_id": None, "causation_id": None},
        "occurred_at": datetime.now(UTC),
    }
    for name, value in override.items():
        if value is None:
            document.pop(name)
        else:
            document[name] = value
    return document


async def test_an_undecodable_event_is_parked_with_its_reason_and_holds_only_its_stream(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    broken = stored("bad", 2, 20, occurred_at=None)
    await mongo_db["events"].insert_many(
        [
            stored("good", 1, 1),
            stored("bad", 1, 10),
            broken,
            stored("bad", 3, 30),
            stored("odd", 1, 5, payload=[1, 2]),
            stored("good", 2, 2),
        ]
    )
    worker = MongoProjectionWorker(Sums(), factory, max_await_ms=20)

    await worker.run_until_caught_up()
    await mongo_db["events"].insert_one(stored("good", 3, 3))
    await worker.run_until_caught_up()

    parked = {(p.stream_id, p.version): p for p in await worker.parked()}
    docs = {doc["_id"]: doc async for doc in mongo_db["sums"].find({})}
    assert docs["good"]["v"] == [1, 2, 3]
    assert docs["bad"]["v"] == [1]
    assert "odd" not in docs
    assert set(parked) == {("bad", 2), ("bad", 3), ("odd", 1)}
    assert parked[("bad", 2)].error == "stored event has no 'occurred_at'"
    assert parked[("bad", 3)].held_behind == 2
    assert parked[("odd", 1)].error == ("stored event's 'payload' is a list, expected a document")

    await mongo_db["events"].update_one(
        {"_id": broken["_id"]}, {"$set": {"occurred_at": datetime.now(UTC)}}
    )
    assert await worker.replay_parked("bad") == 2
    assert (await mongo_db["sums"].find_one({"_id": "bad"}))["v"] == [1, 2, 3]


async def test_status_reports_state_lag_parked_and_lease(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await mongo_db["events"].insert_many([stored("a", 1, 1), stored("a", 2, 2)])
    worker = MongoProjectionWorker(Sums(), factory, max_await_ms=20, worker_id="w-1")

    before = await worker.status()
    await worker.start()
    for _ in range(200):
        status = await worker.status()
        if status.state == "streaming" and status.lag_events == 0:
            break
        await asyncio.sleep(0.05)
    await worker.stop()
    after = await worker.status()

    assert isinstance(before, ProjectionStatus)
    assert (before.state, before.lag_events, before.lease_owner) == ("stopped", 2, None)
    assert (status.state, status.lag_events, status.parked) == ("streaming", 0, 0)
    assert status.lease_owner == "w-1"
    assert status.lease_expires_at is not None
    assert status.checkpoint_age_seconds is not None
    assert status.last_error is None
    assert after.state == "stopped"


async def test_a_worker_whose_loop_died_reports_failed(
    factory: MongoUnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = MongoProjectionWorker(Sums(), factory, max_await_ms=20)

    class Fatal(BaseException):  # not an Exception: the loop does not survive it
        pass

    async def die() -> int:
        raise Fatal("loop killed")

    monkeypatch.setattr(worker, "run_once", die)
    await worker.start()
    await asyncio.sleep(0.1)
    status = await worker.status()

    assert status.state == "failed"
    assert status.last_error == "Fatal: loop killed"
    with pytest.raises(Fatal):
        await worker.stop()


async def test_after_commit_callbacks_see_committed_ids_by_physical_and_logical_name(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await mongo_db["events"].insert_many([stored("a", 1, 1), stored("b", 1, 2)])
    seen: list[Any] = []
    committed_when_called: list[int] = []

    async def check(changes: Any) -> None:
        committed_when_called.append(await mongo_db["sums__v2"].count_documents({}))

    def broken(changes: Any) -> None:
        raise RuntimeError("cache down")

    worker = MongoProjectionWorker(
        Sums(), factory, max_await_ms=20, collection="sums__v2", after_commit=[broken, check]
    )
    worker.add_after_commit(seen.append)

    await worker.run_until_caught_up()
    await worker.run_until_caught_up()

    assert seen == [{"sums__v2": frozenset({"a", "b"}), "sums": frozenset({"a", "b"})}]
    assert committed_when_called == [2]  # called after the commit, not before


async def test_a_projection_reset_by_deleting_its_checkpoint_is_built_again_from_zero(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await mongo_db["events"].insert_many([stored("a", 1, 1), stored("a", 2, 2)])
    worker = MongoProjectionWorker(Sums(), factory, max_await_ms=20)
    await worker.run_until_caught_up()
    await mongo_db["sums"].delete_many({})
    await mongo_db["projection_checkpoints"].delete_many({})  # a reset by hand

    assert await MongoProjectionWorker(Sums(), factory, max_await_ms=20).run_until_caught_up() == 2
    assert (await mongo_db["sums"].find_one({"_id": "a"}))["v"] == [1, 2]
