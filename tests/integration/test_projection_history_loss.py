"""No silent gaps: history loss (emulated 286, or a tiny oplog) ends in a converging catch-up."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.eventsourcing.event_store import MongoEventStore
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.projections import Projection, ProjectionContext
from cqrs_mongo.testing.failpoints import fail_command

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]


class Deposited(DomainEvent):
    amount: int


class Balances(Projection):
    name = "balances"
    calls: ClassVar[Counter[tuple[Any, int]]] = Counter()

    async def on_Deposited(self, event: Deposited, ctx: ProjectionContext) -> None:
        self.calls[(ctx.stream_id, ctx.version)] += 1
        await ctx.upsert(
            ctx.stream_id, {"$inc": {"total": event.amount}, "$push": {"versions": ctx.version}}
        )


async def deposit(factory: MongoUnitOfWorkFactory, account: str, amount: int) -> None:
    async def append(uow: MongoUnitOfWork) -> None:
        store = MongoEventStore(uow.database)
        version = await store.stream_version(account, uow=uow)
        await store.append(account, [Deposited(amount=amount)], version, stream_type="A", uow=uow)

    await factory.run(append)


async def assert_every_document_is_its_fold(db: Any) -> None:
    expected: dict[str, list[int]] = defaultdict(list)
    async for doc in db["events"].find({}).sort([("stream_id", 1), ("version", 1)]):
        expected[doc["stream_id"]].append(doc["version"])
    documents = {doc["_id"]: doc["versions"] async for doc in db["balances"].find({})}
    assert documents == dict(expected)
    assert set(Balances.calls.values()) == {1}  # every handler ran once, replays included
    assert sum(Balances.calls.values()) == sum(len(v) for v in expected.values())


@pytest.fixture(autouse=True)
def fresh_calls() -> None:
    Balances.calls = Counter()


async def test_an_emulated_history_lost_error_catches_up_without_rerunning_handlers(
    mongo_client: Any, mongo_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name, retry_budget_seconds=60)
    for n in range(30):
        await deposit(factory, f"a{n % 5}", n)
    worker = MongoProjectionWorker(Balances(), factory, batch_size=10, max_await_ms=20)
    await worker.run_until_caught_up()
    await worker.run_until_caught_up()  # streaming now: the checkpoint is a resume token
    for n in range(12):
        await deposit(factory, f"a{n % 7}", n)
    worker.feed.max_await_ms = 20
    await worker.feed.close()
    worker._position = None  # as after a restart: resume from the checkpoint

    caplog.set_level(logging.WARNING)
    async with fail_command(mongo_client, ["aggregate"], times=3, error_code=286):
        await worker.run_until_caught_up()
        # A repair round that began after the call has read all the call waits for, so the
        # call ends with it; the loop's next reads try the change stream again.
        assert worker.repairs == 1
        for _ in range(100):
            if worker.repairs == 3:
                break
            await worker.run_once()
        await worker.run_until_caught_up()

    assert worker.repairs == 3  # each failed resume started a catch-up, none started over
    assert "history lost" in caplog.text
    await assert_every_document_is_its_fold(mongo_db)


@pytest.fixture
def tiny_oplog_server() -> Iterator[Any]:
    from secantus import SecantusDBServer

    server = SecantusDBServer(
        host="127.0.0.1", port=0, storage_path=":memory:", oplog_max_entries=40
    )
    server.start()
    logging.getLogger("secantus.storage.close").setLevel(logging.CRITICAL)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def tiny_client(tiny_oplog_server: Any) -> AsyncIterator[Any]:
    client = driver.create_client(str(tiny_oplog_server.uri))
    yield client
    await client.close()


async def test_a_restart_after_the_checkpoint_left_a_tiny_oplog_loses_nothing(
    tiny_client: Any, tiny_oplog_server: Any
) -> None:
    db = driver.get_database(tiny_client, "tiny")
    factory = MongoUnitOfWorkFactory(tiny_client, "tiny", retry_budget_seconds=60)
    await MongoEventStore(db).ensure_indexes()
    rng = random.Random(5)
    accounts = [f"acct-{n}" for n in range(12)]
    for _ in range(20):
        await deposit(factory, rng.choice(accounts), rng.randint(1, 9))
    worker = MongoProjectionWorker(
        Balances(), factory, batch_size=15, max_await_ms=20, idle_checkpoint_seconds=3600
    )
    await worker.run_until_caught_up()
    await worker.run_until_caught_up()  # streaming, checkpoint = a resume token
    for _ in range(150):  # the checkpoint falls out of the 40-entry oplog
        await deposit(factory, rng.choice(accounts), rng.randint(1, 9))
    # The server trims its oplog every 1,000 entries; trim now, as it would later.
    assert tiny_oplog_server.storage.prune_oplog() > 0
    await worker.feed.close()
    worker._position = None  # a restart

    done = asyncio.Event()

    async def keep_writing() -> None:
        local = random.Random(6)
        for _ in range(60):
            await deposit(factory, local.choice(accounts), local.randint(1, 9))
        done.set()

    writer = asyncio.create_task(keep_writing())
    await worker.start()
    await writer
    await asyncio.sleep(1.0)
    await worker.stop()
    await worker.run_until_caught_up()

    await assert_every_document_is_its_fold(db)
    assert worker.repairs >= 1  # the gap was seen, not skipped
