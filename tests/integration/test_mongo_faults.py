"""Transactions under injected faults (failCommand failpoints) on the embedded server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo.errors import OperationFailure, PyMongoError
from tests.integration.counted_clients import counted_client

from cqrs_mongo.domain import AggregateRoot
from cqrs_mongo.errors import ConcurrencyError, TransactionError
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.mongo.driver import create_client
from cqrs_mongo.testing import CommandCounter, clear_fail_command, fail_command, set_fail_command

pytestmark = pytest.mark.requires_transactions

UNKNOWN = "UnknownTransactionCommitResult"
TRANSIENT = "TransientTransactionError"


class Counter(AggregateRoot[str]):
    value: int = 0


class CounterRepository(MongoRepository[Counter, str]):
    entity_type = Counter
    collection = "counters"


@pytest.fixture
def counter() -> CommandCounter:
    return CommandCounter()


@pytest_asyncio.fixture
async def client(mongo_server: Any, counter: CommandCounter) -> AsyncIterator[Any]:
    async with counted_client(mongo_server.uri, counter, "faults") as client:
        yield client


def factory_for(client: Any, **options: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(client, client.test_database_name, **options)


class Writer:
    """A handler writing two documents, counting how often it ran."""

    def __init__(self) -> None:
        self.runs = 0

    async def __call__(self, uow: MongoUnitOfWork) -> None:
        self.runs += 1
        orders = uow.collection("orders")
        await orders.insert_one({"_id": "a", "run": self.runs}, session=uow.session)
        await orders.insert_one({"_id": "b", "run": self.runs}, session=uow.session)


async def stored_ids(client: Any) -> list[str]:
    documents = await client[client.test_database_name]["orders"].find({}).to_list(None)
    return sorted(document["_id"] for document in documents)


@pytest.mark.parametrize("times", [1, 3])
async def test_unknown_commit_result_code_91_retries_only_the_commit(
    client: Any, counter: CommandCounter, times: int
) -> None:
    writer = Writer()
    async with fail_command(
        client, ["commitTransaction"], times=times, error_code=91, error_labels=[UNKNOWN]
    ):
        with counter.measure() as counts:
            await factory_for(client).run(writer)
    assert writer.runs == 1
    assert counts["insert"] == 2
    assert counts["commitTransaction"] == times + 1
    assert await stored_ids(client) == ["a", "b"]


@pytest.mark.parametrize("times", [1, 3])
async def test_write_concern_error_64_on_commit_retries_only_the_commit(
    client: Any, counter: CommandCounter, times: int
) -> None:
    writer = Writer()
    failure = {"code": 64, "errmsg": "waiting for replication timed out"}
    async with fail_command(
        client, ["commitTransaction"], times=times, write_concern_error=failure
    ):
        with counter.measure() as counts:
            await factory_for(client).run(writer)
    assert writer.runs == 1
    assert counts["commitTransaction"] == times + 1
    assert await stored_ids(client) == ["a", "b"]


async def test_write_conflict_reruns_the_whole_unit_with_fresh_state(client: Any) -> None:
    factory = factory_for(client)
    repository = CounterRepository()
    await factory.run(lambda uow: repository.persist(Counter(id="k"), uow))
    runs = 0

    async def increment(uow: MongoUnitOfWork) -> None:
        nonlocal runs
        runs += 1
        (item,) = await repository.retrieve(["k"], uow)
        item.value += 1
        await repository.persist(item, uow)

    async with fail_command(client, ["update"], times=2, error_code=112, error_labels=[TRANSIENT]):
        await factory.run(increment)
    async with factory(read_only=True) as uow:
        (item,) = await repository.retrieve(["k"], uow)
    assert runs == 3
    assert (item.value, item.version) == (1, 2)


async def test_transient_commit_failure_reruns_the_unit(client: Any) -> None:
    writer = Writer()
    async with fail_command(
        client, ["commitTransaction"], error_code=112, error_labels=[TRANSIENT]
    ):
        await factory_for(client).run(writer)
    assert writer.runs == 2
    assert await stored_ids(client) == ["a", "b"]


async def test_connection_closed_once_on_commit_still_commits(client: Any) -> None:
    writer = Writer()
    async with fail_command(client, ["commitTransaction"], close_connection=True):
        await factory_for(client).run(writer)
    assert writer.runs == 1
    assert await stored_ids(client) == ["a", "b"]


async def test_connection_closed_on_every_commit_is_a_clear_error_never_half_written(
    client: Any,
) -> None:
    writer = Writer()
    async with fail_command(client, ["commitTransaction"], times=1000, close_connection=True):
        with pytest.raises(TransactionError) as caught:
            await factory_for(client, retry_budget_seconds=0.3).run(writer)
    assert UNKNOWN in caught.value.labels
    assert not caught.value.retryable
    assert isinstance(caught.value.__cause__, PyMongoError)
    assert writer.runs == 1
    assert await stored_ids(client) in ([], ["a", "b"])


async def test_blocked_connection_past_the_client_timeout_raises_a_timeout(
    mongo_server: Any, client: Any
) -> None:
    impatient = create_client(mongo_server.uri, timeoutMS=300)
    writer = Writer()
    try:
        async with fail_command(client, ["insert"], block_ms=1000):
            with pytest.raises(PyMongoError) as caught:
                await MongoUnitOfWorkFactory(impatient, client.test_database_name).run(writer)
    finally:
        await impatient.close()
    assert caught.value.timeout
    assert writer.runs == 1  # a timeout is the caller's deadline: never retried
    assert await stored_ids(client) == []


async def test_spent_budget_raises_transaction_error_with_labels(client: Any) -> None:
    writer = Writer()
    await set_fail_command(
        client, ["insert"], times=10_000, error_code=112, error_labels=[TRANSIENT]
    )
    try:
        with pytest.raises(TransactionError) as caught:
            await factory_for(client, retry_budget_seconds=0.2).run(writer)
    finally:
        await clear_fail_command(client)
    assert caught.value.retryable
    assert TRANSIENT in caught.value.labels
    assert caught.value.attempts == writer.runs > 1
    assert isinstance(caught.value.__cause__, PyMongoError)
    assert await stored_ids(client) == []


async def test_max_attempts_bounds_the_retries(client: Any) -> None:
    writer = Writer()
    async with fail_command(client, ["insert"], times=10, error_code=112, error_labels=[TRANSIENT]):
        with pytest.raises(TransactionError):
            await factory_for(client, max_attempts=3).run(writer)
    assert writer.runs == 3


async def test_handler_errors_are_not_retried(client: Any) -> None:
    runs = 0

    async def failing(uow: MongoUnitOfWork) -> None:
        nonlocal runs
        runs += 1
        await uow.collection("orders").insert_one({"_id": "a"}, session=uow.session)
        raise ValueError("business rule")

    with pytest.raises(ValueError, match="business rule"):
        await factory_for(client).run(failing)
    assert runs == 1
    assert await stored_ids(client) == []


async def test_transaction_attempts_rerun_the_block_after_a_transient_failure(
    client: Any,
) -> None:
    writer = Writer()
    async with fail_command(client, ["insert"], error_code=112, error_labels=[TRANSIENT]):
        async for attempt in factory_for(client).transaction():
            async with attempt as uow:
                await writer(uow)
    assert writer.runs == 2
    assert await stored_ids(client) == ["a", "b"]


async def test_a_write_conflict_surfaces_as_concurrency_error_chained_from_the_driver(
    client: Any,
) -> None:
    factory = factory_for(client)
    repository = CounterRepository()
    await factory.run(lambda uow: repository.persist(Counter(id="k"), uow))
    async with factory(read_only=True) as uow:
        (item,) = await repository.retrieve(["k"], uow)
    item.value = 5
    async with fail_command(client, ["update"], error_code=112, error_labels=[TRANSIENT]):
        with pytest.raises(ConcurrencyError) as caught:
            async with factory() as uow:
                await repository.persist(item, uow)
    assert isinstance(caught.value.__cause__, OperationFailure)
    assert caught.value.__cause__.code == 112
    assert (caught.value.expected, item.version) == (1, 1)
