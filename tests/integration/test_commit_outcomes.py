"""Every commitTransaction outcome classified, deadlines kept, no orphaned server transactions."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo.errors import PyMongoError

from cqrs_mongo.domain import AggregateRoot
from cqrs_mongo.errors import (
    CommitOutcomeUnknownError,
    CommittedWithWriteConcernError,
    TransactionError,
)
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.mongo.driver import create_client
from cqrs_mongo.testing import fail_command

pytestmark = pytest.mark.requires_transactions

UNKNOWN = "UnknownTransactionCommitResult"


class Counter(AggregateRoot[str]):
    value: int = 0


class CounterRepository(MongoRepository[Counter, str]):
    entity_type = Counter
    collection = "counters"


@pytest_asyncio.fixture
async def client(mongo_server: Any) -> AsyncIterator[Any]:
    # The driver's default 10 s heartbeat on purpose: a deadline must not depend on it.
    client = create_client(mongo_server.uri)
    name = f"outcomes_{uuid.uuid4().hex[:12]}"
    client.test_database_name = name
    try:
        yield client
    finally:
        await client.drop_database(name)
        await client.close()


def factory_for(client: Any, **options: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(client, client.test_database_name, **options)


async def stored(client: Any, collection: str = "orders") -> list[dict[str, Any]]:
    return await client[client.test_database_name][collection].find({}).to_list(None)


async def seconds_until_writable(client: Any, document_id: str, limit: float = 20.0) -> float:
    """How long until a fresh transaction can write ``document_id`` (a held lock refuses it)."""
    started = time.monotonic()
    factory = factory_for(client, retry_budget_seconds=1.0)
    while True:
        try:
            async with factory() as uow:
                await uow.collection("orders").update_one(
                    {"_id": document_id},
                    {"$set": {"by": "second writer"}},
                    upsert=True,
                    session=uow.session,
                )
            return time.monotonic() - started
        except (PyMongoError, TransactionError):
            if time.monotonic() - started > limit:
                return time.monotonic() - started
            await asyncio.sleep(0.1)


async def test_unlabelled_write_concern_error_on_commit_reports_committed_and_keeps_state(
    client: Any,
) -> None:
    factory = factory_for(client)
    repository = CounterRepository()
    item = Counter(id="k")
    committed: list[bool] = []
    failure = {"code": 100, "errmsg": "Not enough data-bearing nodes"}
    async with fail_command(client, ["commitTransaction"], write_concern_error=failure):
        with pytest.raises(CommittedWithWriteConcernError) as caught:
            async with factory() as uow:
                uow.on_commit(lambda: committed.append(True))
                await repository.persist(item, uow)
                # A second write: a transaction (a lone write would be sent without a commit).
                await repository.persist(Counter(id="other"), uow)
    assert caught.value.committed is True
    assert not caught.value.retryable
    assert caught.value.write_concern_code == 100
    assert committed == [True]
    assert item.version == 1  # the write is there: the in-memory version is not rolled back
    item.value = 7
    async with factory() as uow:  # the caller goes on with the same object: no conflict
        await repository.persist(item, uow)
    [document] = [d for d in await stored(client, "counters") if d["_id"] == "k"]
    assert (document["value"], document["version"]) == (7, 2)


async def test_factory_run_does_not_rerun_a_unit_that_committed_with_a_write_concern_error(
    client: Any,
) -> None:
    runs = 0

    async def write(uow: MongoUnitOfWork) -> None:
        nonlocal runs
        runs += 1
        await uow.collection("orders").insert_one({"_id": "a"}, session=uow.session)

    failure = {"code": 79, "errmsg": "unknown replication write concern"}
    async with fail_command(client, ["commitTransaction"], write_concern_error=failure):
        with pytest.raises(CommittedWithWriteConcernError):
            await factory_for(client).run(write)
    assert runs == 1
    assert [d["_id"] for d in await stored(client)] == ["a"]


async def test_commit_budget_is_a_deadline_even_when_the_driver_waits_for_a_heartbeat(
    client: Any,
) -> None:
    async def write(uow: MongoUnitOfWork) -> None:
        await uow.collection("orders").insert_one({"_id": "a"}, session=uow.session)

    async with fail_command(
        client, ["commitTransaction"], times=1000, error_code=91, error_labels=[UNKNOWN]
    ):
        started = time.monotonic()
        with pytest.raises(CommitOutcomeUnknownError) as caught:
            await factory_for(client, retry_budget_seconds=1.0).run(write)
        elapsed = time.monotonic() - started
    assert elapsed < 3.5, f"a 1 s commit budget took {elapsed:.1f} s"
    assert UNKNOWN in caught.value.labels
    assert not caught.value.retryable
    assert "may have committed" in str(caught.value)


async def test_a_first_write_that_timed_out_leaves_no_server_transaction_behind(
    mongo_server: Any, client: Any
) -> None:
    impatient = create_client(mongo_server.uri, timeoutMS=300)
    try:
        async with fail_command(client, ["insert"], block_ms=1500):
            with pytest.raises(PyMongoError) as caught:
                async with MongoUnitOfWorkFactory(impatient, client.test_database_name)() as uow:
                    await uow.collection("orders").insert_one({"_id": "a"}, session=uow.session)
            assert caught.value.timeout
            # The delayed insert reaches the server only now: it must not open a transaction
            # that nobody will ever end.
            await asyncio.sleep(2.0)
            took = await seconds_until_writable(client, "a")
    finally:
        await impatient.close()
    assert took < 5.0, f"the document stayed locked {took:.1f} s"
    assert await stored(client) == [{"_id": "a", "by": "second writer"}]


async def test_giving_up_on_an_unknown_commit_frees_the_documents_at_once(client: Any) -> None:
    async def write(uow: MongoUnitOfWork) -> None:
        await uow.collection("orders").insert_one({"_id": "a"}, session=uow.session)

    async with fail_command(client, ["commitTransaction"], times=1000, close_connection=True):
        with pytest.raises(CommitOutcomeUnknownError):
            await factory_for(client, retry_budget_seconds=0.5).run(write)
    took = await seconds_until_writable(client, "a")
    assert took < 5.0, f"the document stayed locked {took:.1f} s"


async def test_a_handler_failure_aborts_explicitly(client: Any) -> None:
    async with factory_for(client)() as uow:
        await uow.collection("orders").insert_one({"_id": "seed"}, session=uow.session)
    with pytest.raises(ValueError, match="rule"):
        async with factory_for(client)() as uow:
            await uow.collection("orders").insert_one({"_id": "a"}, session=uow.session)
            raise ValueError("rule")
    assert await seconds_until_writable(client, "a") < 2.0


async def test_a_hung_operation_is_bounded_by_the_transaction_timeout(client: Any) -> None:
    factory = factory_for(client, transaction_timeout_seconds=0.5)
    async with fail_command(client, ["insert"], block_ms=1500):
        started = time.monotonic()
        with pytest.raises(PyMongoError) as caught:
            async with factory() as uow:
                await uow.collection("orders").insert_one({"_id": "a"}, session=uow.session)
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.5)  # past the delayed insert's arrival
    assert caught.value.timeout
    assert elapsed < 1.4, f"a 0.5 s transaction timeout took {elapsed:.1f} s"
    assert await seconds_until_writable(client, "a") < 5.0
    assert await stored(client) == [{"_id": "a", "by": "second writer"}]


async def test_read_only_units_have_no_transaction_timeout(client: Any) -> None:
    factory = factory_for(client, transaction_timeout_seconds=0.2)
    async with factory(read_only=True) as uow:
        await asyncio.sleep(0.4)
        assert await uow.collection("orders").find_one({}, session=uow.session) is None


async def test_a_unit_cancelled_mid_write_leaves_no_server_transaction_behind(
    client: Any,
) -> None:
    async def write() -> None:
        async with factory_for(client)() as uow:
            await uow.collection("orders").insert_one({"_id": "a"}, session=uow.session)

    async with fail_command(client, ["insert"], block_ms=1500):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(write(), 0.3)
        await asyncio.sleep(2.0)  # past the delayed insert's arrival
        took = await seconds_until_writable(client, "a")
    assert took < 5.0, f"the document stayed locked {took:.1f} s"
    assert await stored(client) == [{"_id": "a", "by": "second writer"}]


async def test_may_have_committed_says_which_outcomes_may_be_durable(client: Any) -> None:
    factory = factory_for(client, retry_budget_seconds=0.5)

    async def write(uow: MongoUnitOfWork) -> None:
        await uow.collection("orders").insert_one({"_id": uuid.uuid4().hex}, session=uow.session)

    units: list[MongoUnitOfWork] = []

    async def attempt(**failpoint: Any) -> None:
        uow = factory()
        units.append(uow)
        async with fail_command(client, ["commitTransaction"], **failpoint):
            with pytest.raises(TransactionError):
                async with uow:
                    await write(uow)

    await attempt(times=1000, close_connection=True)
    await attempt(write_concern_error={"code": 100, "errmsg": "unsatisfiable"})
    await attempt(error_code=251, error_labels=["TransientTransactionError"])
    clean = factory()
    async with clean:
        await write(clean)
    rolled_back = factory()
    with pytest.raises(ValueError, match="rule"):
        async with rolled_back:
            await write(rolled_back)
            raise ValueError("rule")
    assert [u.may_have_committed for u in units] == [True, True, False]
    assert (clean.may_have_committed, rolled_back.may_have_committed) == (True, False)
