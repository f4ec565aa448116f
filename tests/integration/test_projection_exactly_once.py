"""Exactly-once handler runs and bounded documents, on the embedded server."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any, ClassVar

import bson
import pytest

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.mongo.eventsourcing.event_store import MongoEventStore
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.projections import Projection, ProjectionContext

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]


class Paid(DomainEvent):
    amount: int


class Shipped(DomainEvent):
    pass


class InvalidTransition(Exception):
    pass


class Orders(Projection):
    """A state machine that refuses to ship twice: a replayed handler run would raise."""

    name = "orders"
    calls: ClassVar[Counter[tuple[Any, int]]] = Counter()

    async def on_Paid(self, event: Paid, ctx: ProjectionContext) -> None:
        self.calls[(ctx.stream_id, ctx.version)] += 1
        await ctx.set(ctx.stream_id, status="paid", amount=event.amount)
        await ctx.inc("totals", paid=event.amount, orders=1)

    async def on_Shipped(self, event: Shipped, ctx: ProjectionContext) -> None:
        self.calls[(ctx.stream_id, ctx.version)] += 1
        doc = await ctx.get(ctx.stream_id)
        if doc is None or doc["status"] != "paid":
            raise InvalidTransition(f"{ctx.stream_id} is {doc and doc['status']}")
        await ctx.set(ctx.stream_id, status="shipped")
        await ctx.inc("totals", shipped=1)


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    Orders.calls = Counter()
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, retry_budget_seconds=60)


async def order(factory: MongoUnitOfWorkFactory, order_id: str, amount: int) -> None:
    async def append(uow: MongoUnitOfWork) -> None:
        store = MongoEventStore(uow.database)
        await store.append(
            order_id, [Paid(amount=amount), Shipped()], 0, stream_type="Order", uow=uow
        )

    await factory.run(append)


async def test_events_committed_during_catch_up_run_their_handler_exactly_once(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await MongoEventStore(mongo_db).ensure_indexes()
    for n in range(60):
        await order(factory, f"o-{n}", n)
    writing = asyncio.Event()

    async def keep_ordering() -> None:
        for n in range(60, 160):
            await order(factory, f"o-{n}", n)
            writing.set()

    worker = MongoProjectionWorker(
        Orders(), factory, batch_size=20, max_await_ms=20, retry=_no_retry()
    )
    writer = asyncio.create_task(keep_ordering())
    await writing.wait()
    writing_during_catch_up = not writer.done()
    await worker.run_until_caught_up()  # the writer commits throughout the catch-up
    await worker.start()  # the rest arrives through the change stream
    await writer
    await asyncio.sleep(0.5)
    await worker.stop()
    await worker.run_until_caught_up()

    total = await mongo_db["events"].count_documents({})
    assert total == 320
    assert writing_during_catch_up
    assert len(Orders.calls) == total
    assert set(Orders.calls.values()) == {1}
    assert await worker.parked() == []
    totals = await mongo_db["orders"].find_one({"_id": "totals"})
    assert totals["orders"] == totals["shipped"] == total // 2
    assert await mongo_db["orders"].count_documents({"status": "shipped"}) == total // 2


def _no_retry() -> Any:
    from cqrs_mongo.projections import RetryPolicy

    return RetryPolicy(max_attempts=1)


class Visits(Projection):
    """Every stream touches one counter document."""

    name = "visits"

    async def on_Visited(self, event: Visited, ctx: ProjectionContext) -> None:
        await ctx.inc("all", visits=1)


class Visited(DomainEvent):
    pass


STREAMS = 3_000  # the old in-document map would hold 3,000 entries (~165 KB) here


async def test_a_document_touched_by_many_streams_stays_small(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    now = datetime.now(UTC)
    documents = [
        {
            "_id": uuid.uuid4(),
            "stream_id": uuid.uuid4(),
            "stream_type": "Visitor",
            "version": 1,
            "event_type": "Visited",
            "schema_version": 1,
            "payload": {},
            "metadata": {"correlation_id": None, "causation_id": None},
            "occurred_at": now,
        }
        for _ in range(STREAMS)
    ]
    await mongo_db["events"].insert_many(documents, ordered=False)
    worker = MongoProjectionWorker(Visits(), factory, batch_size=500, max_await_ms=20)

    assert await worker.run_until_caught_up() == STREAMS

    counter = await mongo_db["visits"].find_one({"_id": "all"})
    assert counter == {"_id": "all", "visits": STREAMS}
    assert len(bson.encode(counter)) < 100  # independent of the number of streams
    assert await mongo_db["projection_positions"].count_documents({"p": "visits"}) == STREAMS
