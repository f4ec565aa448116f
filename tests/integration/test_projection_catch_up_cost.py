"""What a projection catch-up sends, and that its shortcuts never run a handler twice.

A catch-up reads the events collection with one cursor (one ``find``, then ``getMore``s), and a
batch costs the cursor's ``getMore``, the documents' updates, the positions' updates, the
checkpoint and the commit: no per-batch position or parked-event read while the round started
with no positions (a first build or a rebuild) and nothing is parked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from tests.integration.account_streams import write_accounts

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.errors import TransactionError
from cqrs_mongo.mongo.driver import create_client
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory
from cqrs_mongo.projections import Projection, ProjectionContext
from cqrs_mongo.testing import CommandCounter, fail_command

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]

STREAMS, PER_STREAM, BATCH = 12, 10, 25  # 120 events: 5 batches, cut mid-stream


class Deposited(DomainEvent):
    amount: int


class Balances(Projection):
    name = "catch_up_balances"
    calls: ClassVar[Counter[tuple[Any, int]]] = Counter()

    async def on_Deposited(self, event: Deposited, ctx: ProjectionContext) -> None:
        self.calls[(ctx.stream_id, ctx.version)] += 1
        await ctx.upsert(ctx.stream_id, {"$inc": {"total": event.amount, "events": 1}})


class Commands(CommandCounter):
    """Counts commands per (name, collection); a ``find`` with a sort or an ``$in`` filter
    is told apart (``find sorted``: a feed read; ``find $in``: a per-batch lookup)."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: Counter[tuple[str, str]] = Counter()

    def started(self, event: Any) -> None:
        super().started(event)
        name, command = event.command_name, event.command
        target = command.get(name)
        if name == "find" and "sort" in command:
            name = "find sorted"
        elif name == "find" and "$in" in str(command.get("filter")):
            name = "find $in"
        self.targets[(name, target if isinstance(target, str) else "")] += 1


@pytest_asyncio.fixture
async def watched(mongo_server: Any, mongo_db: Any) -> AsyncIterator[tuple[Any, Commands]]:
    Balances.calls = Counter()
    commands = Commands()
    client = create_client(mongo_server.uri, event_listeners=[commands])
    factory = MongoUnitOfWorkFactory(client, mongo_db.name)
    await write_accounts(factory, Deposited, STREAMS, PER_STREAM)
    try:
        yield client, commands
    finally:
        await client.close()


def worker_for(client: Any, database: str) -> MongoProjectionWorker:
    factory = MongoUnitOfWorkFactory(client, database, retry_budget_seconds=5)
    return MongoProjectionWorker(Balances(), factory, batch_size=BATCH)


async def totals(database: Any) -> dict[str, tuple[int, int]]:
    docs = await database[Balances.name].find().to_list()
    return {doc["_id"]: (doc["total"], doc["events"]) for doc in docs}


def expected_totals() -> dict[str, tuple[int, int]]:
    return {
        f"acct-{n:02d}": (sum(n + k for k in range(PER_STREAM)), PER_STREAM) for n in range(STREAMS)
    }


async def test_a_first_catch_up_reads_with_one_cursor_and_never_reads_positions(
    watched: tuple[Any, Commands], mongo_db: Any
) -> None:
    client, commands = watched
    worker = worker_for(client, mongo_db.name)
    await worker._target()  # indexes and the alias: not part of a batch's cost
    commands.reset()
    commands.targets.clear()

    assert await worker.run_until_caught_up() == STREAMS * PER_STREAM

    batches = STREAMS * PER_STREAM // BATCH + 1  # the last, partial batch
    assert commands.targets[("find sorted", "events")] == 1
    assert commands.counts["getMore"] == batches - 1
    assert commands.targets[("find $in", "projection_positions")] == 0
    assert commands.targets[("find", "parked_events")] == 1  # once per lease term
    assert commands.targets[("find $in", "parked_events")] == 0
    assert commands.counts["commitTransaction"] == batches
    per_batch = ("update", "commitTransaction", "getMore")
    # Per batch: documents, positions, checkpoint, commit, and a getMore for every batch
    # after the first (which the find brought). Once: the lease's release. The change
    # stream is not opened: the round began after the call, so it read all there was.
    assert sum(commands.counts[name] for name in per_batch) == 4 * batches + (batches - 1) + 1
    assert commands.counts["aggregate"] == 0
    assert await totals(mongo_db) == expected_totals()
    assert set(Balances.calls.values()) == {1}


async def test_a_catch_up_resumed_mid_stream_runs_each_handler_once(
    watched: tuple[Any, Commands], mongo_db: Any
) -> None:
    client, _ = watched
    first = worker_for(client, mongo_db.name)
    await first.run_once()
    await first.run_once()  # 50 events: the checkpoint is in the middle of acct-04
    await first.release_if_idle()

    second = worker_for(client, mongo_db.name)  # a restart: only the checkpoint is known
    await second.run_until_caught_up()

    assert await totals(mongo_db) == expected_totals()
    assert set(Balances.calls.values()) == {1}
    assert len(Balances.calls) == STREAMS * PER_STREAM


async def test_a_batch_that_committed_but_raised_is_not_applied_again(
    watched: tuple[Any, Commands], mongo_client: Any, mongo_db: Any
) -> None:
    client, _ = watched
    worker = worker_for(client, mongo_db.name)
    await worker.run_once()
    # The next commit lands but its write concern fails: the worker sees an error for a
    # batch that is durable. Neither its cached positions nor its in-memory feed position
    # may be trusted after that.
    failure = {"code": 100, "codeName": "UnsatisfiableWriteConcern", "errmsg": "no"}
    async with fail_command(mongo_client, ["commitTransaction"], write_concern_error=failure):
        with pytest.raises(TransactionError):
            await worker.run_once()

    await worker.run_until_caught_up()

    assert await totals(mongo_db) == expected_totals()
    assert set(Balances.calls.values()) == {1}


async def test_every_query_shape_of_a_catch_up_walks_the_events_index(mongo_db: Any) -> None:
    from bson import Timestamp

    from cqrs_mongo.mongo.eventsourcing.event_store import STREAM_ORDER, STREAM_VERSION_INDEX
    from cqrs_mongo.mongo.projections.batch_applier import gap_filter
    from cqrs_mongo.mongo.projections.event_feed import FeedPosition, MongoEventFeed

    events = mongo_db["events"]
    await events.create_indexes([STREAM_VERSION_INDEX])
    await events.insert_many(
        [
            {"stream_id": f"s{s}", "version": v, "event_type": "Deposited" if v % 2 else "Other"}
            for s in range(5)
            for v in range(1, 51)
        ]
    )
    feed = MongoEventFeed(mongo_db, event_types={"Deposited"})
    start = Timestamp(0, 0)
    shapes = [
        *feed._catch_up_filters(FeedPosition(start)),  # from the first event
        *feed._catch_up_filters(FeedPosition(start, after=("s2", 10))),  # a resume
        gap_filter([("s1", 3, 9), ("s3", 40, 45)]),  # a batch filling gaps
    ]
    assert len(shapes) == 5
    for shape in shapes:
        explained = await mongo_db.command(
            {
                "explain": {
                    "find": "events",
                    "filter": shape,
                    "sort": dict(STREAM_ORDER),
                    "hint": dict(STREAM_ORDER),
                },
                "verbosity": "executionStats",
            }
        )
        plan = str(explained["queryPlanner"]["winningPlan"])
        assert "IXSCAN" in plan, shape
        assert "COLLSCAN" not in plan, shape
        stats = explained["executionStats"]
        assert stats["totalDocsExamined"] == stats["totalKeysExamined"], shape
    untyped = [
        *MongoEventFeed(mongo_db)._catch_up_filters(FeedPosition(start, after=("s2", 10))),
        shapes[-1],
    ]
    keys = [
        (
            await mongo_db.command(
                {
                    "explain": {"find": "events", "filter": shape, "hint": dict(STREAM_ORDER)},
                    "verbosity": "executionStats",
                }
            )
        )["executionStats"]["totalKeysExamined"]
        for shape in untyped
    ]
    # Index bounds: the rest of s2, the streams after it, no stream of a later type; the
    # 5 + 4 events of the gaps. Never the whole index.
    assert keys == [40, 100, 0, 9]


async def test_the_guard_reads_are_index_lookups(mongo_db: Any) -> None:
    from cqrs_mongo.mongo.projections.projection_store import MongoProjectionStore
    from cqrs_mongo.mongo.projections.stream_positions import position_id

    store = MongoProjectionStore(mongo_db)
    await store.ensure_indexes()
    await store.positions.collection.insert_many(
        [{"_id": position_id("p", f"s{n}"), "p": "p", "s": f"s{n}", "v": 3} for n in range(200)]
    )
    await store.parked_events.insert_many(
        [
            {"_id": {"collection": c, "stream_id": f"s{n}", "version": 2}, "collection": c}
            | {"stream_id": f"s{n}", "version": 2}
            for c in ("p", "q")
            for n in range(100)
        ]
    )
    reads = [
        # a batch's positions, the parked streams of a term, of a batch's streams
        (
            store.positions.collection,
            {"_id": {"$in": [position_id("p", "s1"), position_id("p", "s7")]}},
            2,
        ),
        (store.parked_events, {"collection": "p"}, 100),
        (store.parked_events, {"collection": "p", "stream_id": {"$in": ["s1", "s2"]}}, 2),
    ]
    for collection, query, matched in reads:
        explained = await mongo_db.command(
            {
                "explain": {"find": collection.name, "filter": query},
                "verbosity": "executionStats",
            }
        )
        plan = str(explained["queryPlanner"]["winningPlan"])
        assert "COLLSCAN" not in plan, query
        assert explained["executionStats"]["totalKeysExamined"] == matched, query
