"""MongoUnitOfWork and its factory on the embedded server (and Motor): sessions, transactions,
callbacks, codecs, bulk writes and concurrent writers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pymongo import InsertOne, ReplaceOne, UpdateOne

from cqrs_mongo.domain import AggregateRoot
from cqrs_mongo.errors import UnitOfWorkError
from cqrs_mongo.mongo import (
    MongoRepository,
    MongoUnitOfWork,
    MongoUnitOfWorkFactory,
    bulk_write,
)
from cqrs_mongo.mongo.driver import capabilities
from cqrs_mongo.testing import CommandCounter

pytestmark = pytest.mark.requires_transactions


class Account(AggregateRoot[str]):
    balance: int = 0


class AccountRepository(MongoRepository[Account, str]):
    entity_type = Account
    collection = "accounts"


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, source="default")


async def test_a_unit_runs_in_a_session_and_transaction(factory: MongoUnitOfWorkFactory) -> None:
    uow = factory()
    assert (uow.session, uow.in_transaction, uow.source) == (None, False, "default")
    async with uow:
        assert uow.session is not None
        assert uow.in_transaction
        assert uow.session.in_transaction
        assert uow.collection("x").name == "x"
    assert (uow.session, uow.in_transaction) == (None, False)


async def test_a_read_only_unit_has_a_session_but_no_transaction(
    factory: MongoUnitOfWorkFactory,
) -> None:
    async with factory(read_only=True) as uow:
        assert uow.session is not None
        assert not uow.in_transaction


async def test_capabilities_are_learned_once_per_client(mongo_client: Any) -> None:
    first = await capabilities(mongo_client)
    again = await capabilities(mongo_client)
    assert first is again
    assert first.transactions


async def test_writes_are_invisible_outside_until_commit(factory: MongoUnitOfWorkFactory) -> None:
    async with factory() as uow:
        await uow.collection("notes").insert_one({"_id": 1}, session=uow.session)
        assert await factory.database["notes"].find_one({"_id": 1}) is None
    assert await factory.database["notes"].find_one({"_id": 1}) == {"_id": 1}


async def test_callbacks_run_only_for_the_outcome_reached(
    factory: MongoUnitOfWorkFactory,
) -> None:
    events: list[str] = []
    async with factory() as uow:
        uow.on_commit(lambda: events.append("committed"))
        uow.on_rollback(lambda: events.append("rolled back"))
    with pytest.raises(RuntimeError):
        async with factory() as uow:
            uow.on_commit(lambda: events.append("committed 2"))
            uow.on_rollback(lambda: events.append("rolled back 2"))
            raise RuntimeError("abort")
    assert events == ["committed", "rolled back 2"]


async def test_misuse_is_refused_with_the_state_named(factory: MongoUnitOfWorkFactory) -> None:
    uow = factory()
    async with uow:
        pass
    with pytest.raises(UnitOfWorkError, match="closed"):
        await uow.commit()
    with pytest.raises(UnitOfWorkError, match="closed"):
        await uow.begin()


async def test_codecs_apply_to_a_plain_motor_client(motor_client: Any) -> None:
    name = f"codecs_{uuid.uuid4().hex[:12]}"
    factory = MongoUnitOfWorkFactory(motor_client, name)
    reference = uuid.uuid4()
    stamp = datetime(2024, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)
    document = {
        "_id": reference,
        "at": stamp,
        "prices": [Decimal("1.10"), {"net": Decimal("2.20")}],
        "nested": {"list": [{"amount": Decimal("-0.01")}]},
    }
    try:
        async with factory() as uow:
            await uow.collection("c").insert_one(document, session=uow.session)
        stored = await factory.database["c"].find_one({"_id": reference})
    finally:
        await motor_client.drop_database(name)
    assert stored == document
    assert stored["at"].tzinfo is not None


async def test_bulk_write_runs_in_the_unit_and_rolls_back_with_it(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    operations: list[Any] = [
        InsertOne({"_id": 1, "n": 1}),
        UpdateOne({"_id": 1}, {"$inc": {"n": 1}}),
        ReplaceOne({"_id": 2}, {"n": 9}, upsert=True),
    ]
    with pytest.raises(RuntimeError):
        async with factory() as uow:
            await bulk_write(uow.collection("b"), operations, session=uow.session)
            raise RuntimeError("abort")
    assert await factory.database["b"].count_documents({}) == 0
    async with factory() as uow:
        with command_counter.measure() as counts:
            outcome = await bulk_write(uow.collection("b"), operations, session=uow.session)
    assert not outcome.fallback
    assert (outcome.inserted, outcome.matched, outcome.upserted) == (1, 1, 1)
    assert "commitTransaction" in counts
    stored = await factory.database["b"].find({}).sort("_id").to_list(None)
    assert stored == [{"_id": 1, "n": 2}, {"_id": 2, "n": 9}]


async def test_twenty_concurrent_increments_lose_no_update(
    factory: MongoUnitOfWorkFactory,
) -> None:
    repository = AccountRepository()
    await factory.run(lambda uow: repository.persist(Account(id="acc"), uow))
    runs = 0

    async def deposit(uow: MongoUnitOfWork) -> None:
        nonlocal runs
        runs += 1
        (account,) = await repository.retrieve(["acc"], uow)
        await asyncio.sleep(0)  # every task reads before any writes
        account.balance += 1
        await repository.persist(account, uow)

    await asyncio.gather(*(factory.run(deposit) for _ in range(20)))
    async with factory(read_only=True) as uow:
        (account,) = await repository.retrieve(["acc"], uow)
    assert (account.balance, account.version) == (20, 21)
    assert runs >= 20
