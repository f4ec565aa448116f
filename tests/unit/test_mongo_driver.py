"""The driver seam without a server: capability detection, mongomock codecs and bulk writes."""

from __future__ import annotations

import asyncio
import enum
import logging
import types
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient
from pymongo import DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne

from cqrs_mongo.errors import ConfigurationError, TransactionsUnsupportedError
from cqrs_mongo.mongo import MongoUnitOfWorkFactory, bulk_write
from cqrs_mongo.mongo.driver import capabilities, driver_kind, get_database


class FakeAdmin:
    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.calls = 0

    async def command(self, name: str) -> dict[str, Any]:
        assert name == "hello"
        self.calls += 1
        await asyncio.sleep(0)
        return self.reply


class FakeClient:
    """Looks like a pymongo async client to the capability probe."""

    def __init__(self, reply: dict[str, Any]) -> None:
        self.admin = FakeAdmin(reply)


SESSIONS = {"logicalSessionTimeoutMinutes": 30}


@pytest.mark.parametrize(
    ("reply", "transactions", "topology"),
    [
        ({**SESSIONS, "setName": "rs0"}, True, "replica_set"),
        ({**SESSIONS, "msg": "isdbgrid"}, True, "sharded"),
        ({**SESSIONS}, False, "standalone"),
        ({"setName": "rs0"}, False, "replica_set"),
    ],
)
async def test_capabilities_come_from_hello(
    reply: dict[str, Any], transactions: bool, topology: str
) -> None:
    found = await capabilities(FakeClient(reply))
    assert (found.transactions, found.topology) == (transactions, topology)


async def test_concurrent_first_units_share_one_hello() -> None:
    client = FakeClient({**SESSIONS, "setName": "rs0"})
    results = await asyncio.gather(*(capabilities(client) for _ in range(10)))
    await capabilities(client)
    assert client.admin.calls == 1
    assert all(result.transactions for result in results)


def test_driver_kinds_are_told_apart() -> None:
    from motor.motor_asyncio import AsyncIOMotorClient
    from pymongo import AsyncMongoClient

    assert driver_kind(AsyncMongoMockClient()) == "mongomock"
    assert driver_kind(AsyncIOMotorClient("mongodb://127.0.0.1:1", connect=False)) == "motor"
    assert driver_kind(AsyncMongoClient("mongodb://127.0.0.1:1", connect=False)) == "pymongo"


class Colour(enum.Enum):
    RED = "red"


async def test_mongomock_database_stores_and_returns_the_package_types() -> None:
    database = get_database(AsyncMongoMockClient(), "db")
    key = uuid.uuid4()
    local = datetime(2024, 1, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    await database["c"].insert_one(
        {"_id": key, "at": local, "prices": [Decimal("1.5"), {"x": Decimal("2")}], "c": Colour.RED}
    )
    stored = await database["c"].find_one({"_id": key})
    assert stored == {
        "_id": key,
        "at": datetime(2024, 1, 1, 12, 0, 0, 123000, tzinfo=UTC),
        "prices": [Decimal("1.5"), {"x": Decimal("2")}],
        "c": "red",
    }
    assert await database["c"].count_documents({"prices": Decimal("1.5")}) == 1


async def test_mongomock_native_bulk_write_is_broken_and_refused() -> None:
    client = AsyncMongoMockClient()
    operations = [InsertOne({"_id": 1, "n": 1}), UpdateOne({"_id": 1}, {"$inc": {"n": 1}})]
    with pytest.raises(TypeError):  # the reason the seam never calls it
        await client["raw"]["c"].bulk_write(operations)
    with pytest.raises(ConfigurationError):
        await get_database(client, "db")["c"].bulk_write(operations)


async def test_bulk_write_on_mongomock_falls_back_to_single_calls() -> None:
    collection = get_database(AsyncMongoMockClient(), "db")["c"]
    await collection.insert_many([{"_id": 10, "n": 0}, {"_id": 11, "n": 0}])
    outcome = await bulk_write(
        collection,
        [
            InsertOne({"_id": 1, "n": 1}),
            UpdateOne({"_id": 1}, {"$inc": {"n": 1}}),
            ReplaceOne({"_id": 2}, {"n": 7}, upsert=True),
            UpdateMany({"_id": {"$gte": 10}}, {"$set": {"n": 5}}),
            DeleteOne({"_id": 11}),
        ],
        session=None,
    )
    assert outcome.fallback
    assert (outcome.inserted, outcome.matched, outcome.modified) == (1, 3, 3)
    assert (outcome.upserted, outcome.deleted) == (1, 1)
    stored = await collection.find({}).sort("_id").to_list(None)
    assert stored == [{"_id": 1, "n": 2}, {"_id": 2, "n": 7}, {"_id": 10, "n": 5}]


async def test_mongomock_unit_has_no_session_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    factory = MongoUnitOfWorkFactory(AsyncMongoMockClient(), "db")
    with caplog.at_level(logging.WARNING, logger="cqrs_mongo.mongo.transactions.unit_of_work"):
        for _ in range(3):
            async with factory() as uow:
                assert (uow.session, uow.in_transaction) == (None, False)
    warnings = [r for r in caplog.records if "no multi-document transactions" in r.message]
    assert len(warnings) == 1


async def test_require_transactions_refuses_mongomock() -> None:
    factory = MongoUnitOfWorkFactory(AsyncMongoMockClient(), "db", require_transactions=True)
    uow = factory()
    with pytest.raises(TransactionsUnsupportedError, match="mongomock"):
        await uow.begin()


async def test_mongomock_refuses_documents_over_16_mib_as_a_server_would() -> None:
    from cqrs_mongo.domain import AggregateRoot, DomainEvent
    from cqrs_mongo.errors import DocumentTooLargeError
    from cqrs_mongo.mongo import MongoRepository
    from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository

    class Dumped(DomainEvent):
        blob: bytes

    class Box(AggregateRoot[str]):
        blob: bytes = b""

        def apply_Dumped(self, event: Dumped) -> None:
            self.blob = event.blob

    class Boxes(EventSourcedRepository[Box, str]):
        pass

    class BoxDocuments(MongoRepository[Box, str]):
        entity_type = Box
        collection = "boxes"

    factory = MongoUnitOfWorkFactory(AsyncMongoMockClient(), "mock")
    huge = b"x" * (17 * 1024 * 1024)
    box = Box.blank("b")
    box.add_event(Dumped(blob=huge))
    with pytest.raises(DocumentTooLargeError):
        async with factory() as uow:
            await Boxes().persist(box, uow)
    with pytest.raises(DocumentTooLargeError):
        async with factory() as uow:
            await BoxDocuments().persist(Box(id="c", blob=huge), uow)
    async with factory() as uow:
        await BoxDocuments().persist(Box(id="d"), uow)
    stored = factory.database["boxes"]
    async with factory() as uow:
        [small] = await BoxDocuments().retrieve(["d"], uow)
    small.blob = huge
    with pytest.raises(DocumentTooLargeError):
        async with factory() as uow:
            await BoxDocuments().persist(small, uow)
    assert await factory.database["events"].count_documents({}) == 0
    assert [d["_id"] for d in await stored.find({}).to_list(None)] == ["d"]


async def test_the_driver_seam_awaits_every_kind_of_awaitable_and_nothing_else() -> None:
    # Motor hands back futures, pymongo async coroutines, either may hand back plain values.
    from cqrs_mongo.mongo.driver import _resolve

    async def coroutine() -> str:
        return "coroutine"

    @types.coroutine
    def generator_based() -> Any:
        yield from asyncio.sleep(0).__await__()
        return "generator"

    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future.set_result("future")
    plain = {"a": 1}
    assert await _resolve(coroutine()) == "coroutine"
    assert await _resolve(generator_based()) == "generator"
    assert await _resolve(future) == "future"
    assert await _resolve(plain) is plain
    assert await _resolve(None) is None


class SessionStarting:
    """Records how a driver session was asked to start a transaction."""

    def __init__(self, *, waits: bool) -> None:
        self.waits = waits
        self.started = False

    async def start_transaction(self, **options: Any) -> None:
        if self.waits:  # as pymongo does for a connection pinned by an earlier transaction
            await asyncio.sleep(0)
        self.started = True


class MotorLikeSession:
    def __init__(self) -> None:
        self.options: dict[str, Any] = {}

    def start_transaction(self, **options: Any) -> object:
        self.options = options
        return object()  # Motor's transaction context, not awaitable


def test_a_transaction_is_started_without_awaiting_when_the_driver_need_not_wait() -> None:
    # The unit of work starts its transaction inside a property: the driver call must finish
    # at once (pymongo: a fresh session; Motor: always).
    from cqrs_mongo.mongo.driver import start_transaction_now

    fresh = SessionStarting(waits=False)
    start_transaction_now(fresh)
    assert fresh.started
    motor = MotorLikeSession()
    start_transaction_now(motor, read_concern="majority")
    assert motor.options["read_concern"].level == "majority"
    assert motor.options["write_concern"].document == {"w": "majority"}


def test_a_transaction_the_driver_must_wait_for_is_refused_not_left_half_started() -> None:
    from cqrs_mongo.errors import TransactionError
    from cqrs_mongo.mongo.driver import start_transaction_now

    pinned = SessionStarting(waits=True)
    with pytest.raises(TransactionError, match="without waiting"):
        start_transaction_now(pinned)
    assert not pinned.started
