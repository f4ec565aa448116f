"""The projection worker on the embedded server: exactly once under load and restarts, parking."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import defaultdict
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.errors import ConfigurationError, ProjectionError
from cqrs_mongo.mongo.eventsourcing.event_store import MongoEventStore
from cqrs_mongo.mongo.projections.projection_query import ProjectionPersistence
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.persistence import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.projections import Projection, ProjectionContext, RetryPolicy, WorkerState
from cqrs_mongo.specifications import QueryOptions, SpecificationBuilder

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]


class Deposited(DomainEvent):
    amount: int


class BalanceProjection(Projection):
    """One document per account, plus one document every event touches."""

    name = "balances"
    failing_amounts: ClassVar[set[int]] = set()

    async def on_Deposited(self, event: Deposited, ctx: ProjectionContext) -> None:
        if event.amount in self.failing_amounts:
            raise ValueError(f"cannot handle amount {event.amount}")
        await ctx.upsert(
            ctx.stream_id,
            {"$inc": {"total": event.amount, "events": 1}, "$push": {"versions": ctx.version}},
        )
        await ctx.inc("all-accounts", total=event.amount, events=1)


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, retry_budget_seconds=60)


@pytest.fixture(autouse=True)
def healthy_handler() -> Any:
    BalanceProjection.failing_amounts = set()
    yield
    BalanceProjection.failing_amounts = set()


async def deposit(factory: MongoUnitOfWorkFactory, account: Any, *amounts: int) -> None:
    async def append(uow: MongoUnitOfWork) -> None:
        store = MongoEventStore(uow.database)
        version = await store.stream_version(account, uow=uow)
        events = [Deposited(amount=amount) for amount in amounts]
        await store.append(account, events, version, stream_type="Account", uow=uow)

    await factory.run(append)


async def fold_of_events(database: Any) -> dict[str, dict[str, Any]]:
    """Each account's expected document, computed from the events collection."""
    folded: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"total": 0, "events": 0, "versions": []}
    )
    async for doc in database["events"].find({}).sort([("stream_id", 1), ("version", 1)]):
        account = folded[doc["stream_id"]]
        account["total"] += doc["payload"]["amount"]
        account["events"] += 1
        account["versions"].append(doc["version"])
    return dict(folded)


async def projected(database: Any, collection: str = "balances") -> dict[str, dict[str, Any]]:
    return {doc.pop("_id"): doc async for doc in database[collection].find({})}


async def test_exactly_once_with_ten_writers_and_three_restarts(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    rng = random.Random(20261126)
    await MongoEventStore(mongo_db).ensure_indexes()
    accounts = [f"acct.{n}" for n in range(50)]  # dots: stream ids are data, never field names

    async def writer(seed: int) -> None:
        local = random.Random(seed)
        remaining = 100
        while remaining:
            size = min(remaining, local.randint(1, 3))
            amounts = [local.randint(1, 9) for _ in range(size)]
            await deposit(factory, local.choice(accounts), *amounts)
            remaining -= size

    worker = MongoProjectionWorker(BalanceProjection(), factory, batch_size=40, max_await_ms=20)
    writers = asyncio.gather(*(writer(rng.randrange(10**9)) for _ in range(10)))
    await asyncio.sleep(rng.uniform(0.05, 0.3))  # some history to catch up on first
    await worker.start()
    for restart in range(3):
        await asyncio.sleep(rng.uniform(0.1, 0.8))
        await worker.stop(graceful=restart == 1)  # two of them cancel mid-batch, like a crash
        assert worker.state is WorkerState.STOPPED
        await asyncio.sleep(rng.uniform(0.0, 0.2))
        await worker.start()
    await writers
    await worker.stop()
    await worker.run_until_caught_up()

    expected = await fold_of_events(mongo_db)
    documents = await projected(mongo_db)
    everything = documents.pop("all-accounts")
    assert sum(account["events"] for account in expected.values()) == 1000
    for account, fold in expected.items():
        document = documents.pop(account)
        assert {k: document[k] for k in ("total", "events", "versions")} == fold, account
    assert documents == {}
    assert everything["events"] == 1000
    assert everything["total"] == sum(fold["total"] for fold in expected.values())
    assert (await worker.lag()).events == 0


async def test_catch_up_then_stream_applies_each_event_once(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    for n in range(7):
        await deposit(factory, f"a{n % 3}", n + 1)
    worker = MongoProjectionWorker(BalanceProjection(), factory, batch_size=2, max_await_ms=20)

    assert await worker.run_until_caught_up() == 7
    await deposit(factory, "a0", 100, 200)
    assert await worker.run_until_caught_up() == 2
    assert await worker.run_until_caught_up() == 0

    documents = await projected(mongo_db)
    assert documents["a0"]["versions"] == [1, 2, 3, 4, 5]
    assert documents["a0"]["total"] == 1 + 4 + 7 + 100 + 200
    assert documents["all-accounts"]["events"] == 9


async def test_lag_counts_unapplied_events(factory: MongoUnitOfWorkFactory) -> None:
    worker = MongoProjectionWorker(BalanceProjection(), factory, max_await_ms=20)
    for n in range(4):
        await deposit(factory, "a", n + 1)

    before = await worker.lag()
    await worker.run_until_caught_up()
    caught_up = await worker.lag()
    await deposit(factory, "b", 5, 6)
    behind = await worker.lag()

    assert (before.events, caught_up.events, behind.events) == (4, 0, 2)
    assert caught_up.seconds == 0.0
    assert caught_up.caught_up
    assert behind.seconds >= 0.0
    assert not behind.caught_up


async def test_a_poison_event_is_parked_and_the_projection_moves_on(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    BalanceProjection.failing_amounts = {13}
    await deposit(factory, "good", 1)
    await deposit(factory, "bad", 2)
    await deposit(factory, "bad", 13)  # poison
    await deposit(factory, "good", 3)
    await deposit(factory, "bad", 4)  # held behind the poison, to keep the stream in order
    worker = MongoProjectionWorker(
        BalanceProjection(),
        factory,
        batch_size=10,
        max_await_ms=20,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01),
    )

    await worker.run_until_caught_up()
    await deposit(factory, "good", 5)
    await worker.run_until_caught_up()

    parked = await worker.parked()
    documents = await projected(mongo_db)
    assert [(p.stream_id, p.version, p.held_behind) for p in parked] == [
        ("bad", 2, None),
        ("bad", 3, 2),
    ]
    assert parked[0].attempts == 3
    assert parked[0].error == "ValueError: cannot handle amount 13"
    assert documents["good"]["versions"] == [1, 2, 3]
    assert documents["bad"]["versions"] == [1]
    assert documents["all-accounts"]["events"] == 4


async def test_replaying_parked_events_after_a_fix_applies_them_in_order(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    BalanceProjection.failing_amounts = {13}
    for amount in (2, 13, 4):
        await deposit(factory, "bad", amount)
    worker = MongoProjectionWorker(
        BalanceProjection(),
        factory,
        max_await_ms=20,
        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
    )
    await worker.run_until_caught_up()

    assert await worker.replay_parked() == 0  # still broken: stays parked, error kept
    [still, _] = await worker.parked()
    BalanceProjection.failing_amounts = set()
    replayed = await worker.replay_parked()
    await deposit(factory, "bad", 8)
    await worker.run_until_caught_up()

    assert still.attempts == 3
    assert still.error == "ValueError: cannot handle amount 13"
    assert replayed == 2
    assert await worker.parked() == []
    document = (await projected(mongo_db))["bad"]
    assert document["versions"] == [1, 2, 3, 4]
    assert document["total"] == 2 + 13 + 4 + 8
    assert document["events"] == 4


async def test_a_handler_failing_once_is_retried_not_parked(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    failures = iter([True])

    class Flaky(BalanceProjection):
        async def on_Deposited(self, event: Deposited, ctx: ProjectionContext) -> None:
            if event.amount == 7 and next(failures, False):
                raise ConnectionError("downstream blip")
            await super().on_Deposited(event, ctx)

    await deposit(factory, "a", 1, 7, 2)
    worker = MongoProjectionWorker(
        Flaky(), factory, max_await_ms=20, retry=RetryPolicy(base_delay=0.01)
    )

    await worker.run_until_caught_up()

    assert await worker.parked() == []
    document = (await projected(mongo_db))["a"]
    assert (document["versions"], document["events"]) == ([1, 2, 3], 3)


async def test_starting_twice_is_refused(factory: MongoUnitOfWorkFactory) -> None:
    worker = MongoProjectionWorker(BalanceProjection(), factory, max_await_ms=20)
    await worker.start()
    try:
        with pytest.raises(ProjectionError, match="cannot go from running to running"):
            await worker.start()
    finally:
        await worker.stop()
    await worker.stop()  # stopping a stopped worker is harmless
    assert worker.state is WorkerState.STOPPED


class BalanceDTO(BaseModel):
    id: str
    total: int
    events: int
    versions: list[int] = []


class BalanceQuery(ProjectionPersistence[BalanceDTO, str]):
    dto_type = BalanceDTO
    collection = "balances"


async def test_rebuild_under_load_never_shows_readers_a_partial_model(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    registry = PersistenceRegistry()
    registry.register_query(BalanceDTO, BalanceQuery)
    registry.register_query_spec(BalanceDTO, BalanceQuery)
    dispatcher = PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)
    accounts = [f"acct-{n}" for n in range(20)]
    for n, account in enumerate(accounts):
        await deposit(factory, account, *range(1, 2 + n % 5))
    worker = MongoProjectionWorker(BalanceProjection(), factory, batch_size=10, max_await_ms=20)
    await worker.run_until_caught_up()
    at_start = {doc["_id"]: doc["events"] for doc in (await projected_list(mongo_db))}
    await worker.start()
    rebuilding = asyncio.Event()
    switched = asyncio.Event()
    done = asyncio.Event()
    reads_during_rebuild = reads_after_switch = 0

    async def keep_writing() -> None:
        rng = random.Random(7)
        while not done.is_set():
            await deposit(factory, rng.choice(accounts), rng.randint(1, 9))

    async def keep_reading() -> None:
        nonlocal reads_during_rebuild, reads_after_switch
        everyone = QueryOptions().with_specification(
            SpecificationBuilder().where("events", ">", 0).build()
        )
        while not done.is_set():
            seen = {dto.id: dto for dto in await (await dispatcher.fetch(BalanceDTO, everyone))}
            assert set(seen) == {*accounts, "all-accounts"}
            for account in accounts:
                assert seen[account].events >= at_start[account], account
            reads_during_rebuild += rebuilding.is_set() and not switched.is_set()
            reads_after_switch += switched.is_set()
            if reads_after_switch >= 20:  # enough reads of the new model
                done.set()
            await asyncio.sleep(0)

    background = asyncio.gather(keep_writing(), keep_reading())
    rebuilding.set()
    try:
        new_collection = await worker.rebuild()
        switched.set()
        await background
    finally:
        done.set()
        await worker.stop()
        with contextlib.suppress(Exception):  # already raised above if it failed
            await background
    await worker.run_until_caught_up()

    expected = await fold_of_events(mongo_db)
    after = {dto.id: dto for dto in await (await dispatcher.fetch(BalanceDTO, QueryOptions()))}
    assert new_collection == "balances__v2"
    assert reads_during_rebuild > 0
    assert reads_after_switch >= 20
    assert {account: after[account].model_dump(exclude={"id"}) for account in accounts} == expected
    rebuilt = await projected(mongo_db, "balances__v2")
    assert rebuilt["all-accounts"]["events"] == sum(f["events"] for f in expected.values())


async def projected_list(database: Any) -> list[dict[str, Any]]:
    return [doc async for doc in database["balances"].find({})]


async def test_catch_up_walks_stream_ids_of_every_type_once(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    ids: list[Any] = [2, 10, "b", "a.$x", uuid.UUID(int=5), 7.5]
    for n, stream_id in enumerate(ids):
        await deposit(factory, stream_id, n + 1, n + 1)
    worker = MongoProjectionWorker(BalanceProjection(), factory, batch_size=1, max_await_ms=20)

    assert await worker.run_until_caught_up() == 12

    documents = {doc["_id"]: doc async for doc in mongo_db["balances"].find({})}
    assert {k: documents[k]["versions"] for k in ids} == {key: [1, 2] for key in ids}
    assert documents["all-accounts"]["events"] == 12


async def test_the_worker_refuses_a_deployment_without_transactions(mongomock_client: Any) -> None:
    factory = MongoUnitOfWorkFactory(mongomock_client, "shop")
    worker = MongoProjectionWorker(BalanceProjection(), factory)

    with pytest.raises(ConfigurationError, match="needs transactions and change streams"):
        await worker.start()
    assert worker.state is WorkerState.STOPPED


class Renamed(DomainEvent):
    name: str


async def test_events_the_projection_ignores_still_move_its_checkpoint_on(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    worker = MongoProjectionWorker(
        BalanceProjection(), factory, max_await_ms=20, idle_checkpoint_seconds=0
    )
    await deposit(factory, "a", 1)
    await worker.run_until_caught_up()
    await worker.run_until_caught_up()  # now streaming
    before = await mongo_db["projection_checkpoints"].find_one({"_id": "balances"})

    async with factory() as uow:
        renames = [Renamed(name=f"n{n}") for n in range(3)]
        await MongoEventStore(uow.database).append("a", renames, 1, stream_type="Account", uow=uow)
    await worker.run_until_caught_up()
    after = await mongo_db["projection_checkpoints"].find_one({"_id": "balances"})

    assert before["position"]["streaming"] is True
    assert after["position"]["resume_token"] != before["position"]["resume_token"]
    assert after["events"] == before["events"] == 1
