"""One test per cell of the README's "what works where" table (issue 10.6).

Columns: in memory, mongomock, the embedded server; the replica-set column is these same tests
run with ``MONGODB_URI`` naming a replica set (the ``embedded`` parameter then runs there).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from examples.ecommerce.domain import Order, OrderCreated, OrderSummaryDTO
from examples.ecommerce.infrastructure import OrderSummaryProjection
from pydantic import BaseModel

from cqrs_mongo import (
    AggregateRoot,
    ConcurrencyError,
    ConfigurationError,
    InMemoryQueryPersistence,
    InMemoryRepository,
    InMemoryUnitOfWorkFactory,
    NonTransactionalRollbackWarning,
    PersistenceDispatcher,
    PersistenceRegistry,
    QueryOptions,
    SpecificationBuilder,
)
from cqrs_mongo.errors import MongomockLimitError
from cqrs_mongo.eventsourcing import InMemoryEventSourcedRepository, shared_event_store
from cqrs_mongo.mongo import (
    EventSourcedRepository,
    MongoProjectionWorker,
    MongoReadModelPersistence,
    MongoRepository,
    MongoUnitOfWorkFactory,
)
from cqrs_mongo.mongo.driver import create_mongomock_client
from cqrs_mongo.projections import (
    InMemoryProjectionPersistence,
    InMemoryProjectionRunner,
    shared_projection_store,
)


class Account(AggregateRoot[str]):
    balance: int = 0


class Row(BaseModel):
    id: str
    group: str
    amount: Decimal


class MemoryAccounts(InMemoryRepository[Account, str]):
    entity_type = Account


class MongoAccounts(MongoRepository[Account, str]):
    entity_type = Account
    collection = "accounts"


class MemoryOrders(InMemoryEventSourcedRepository[Order, str]):
    pass


class MongoOrders(EventSourcedRepository[Order, str]):
    pass


class MemoryRows(InMemoryQueryPersistence[Row, str]):
    dto_type = Row
    collection = "rows"


class MongoRows(MongoReadModelPersistence[Row, str]):
    collection = "rows"


class MemorySummaries(InMemoryProjectionPersistence[OrderSummaryDTO, str]):
    collection = "order_summaries"


@dataclass
class Where:
    name: str
    factory: Any
    accounts: type[Any]
    orders: type[Any]
    rows: type[Any]

    def dispatcher(self) -> PersistenceDispatcher:
        registry = PersistenceRegistry()
        for entity, handler in ((Account, self.accounts), (Order, self.orders)):
            registry.register_operation(entity, handler)
            registry.register_retrieval(entity, handler)
        registry.register_query(Row, self.rows)
        registry.register_query_spec(Row, self.rows)
        return PersistenceDispatcher({"default": self.factory}, registry)

    async def seed_rows(self, count: int) -> None:
        rows = [
            Row(id=f"r-{n:02d}", group="a" if n % 2 else "b", amount=Decimal(n) + Decimal("0.5"))
            for n in range(count)
        ]
        if self.name == "memory":
            async with self.factory() as uow:
                for row in rows:
                    await MemoryRows().save(row, uow)
            return
        documents = [{"_id": r.id, "group": r.group, "amount": r.amount} for r in rows]
        await self.factory.database["rows"].insert_many(documents)


@pytest.fixture(params=["memory", "mongomock", "embedded"])
def where(request: pytest.FixtureRequest) -> Where:
    if request.param == "memory":
        return Where(
            "memory", InMemoryUnitOfWorkFactory(), MemoryAccounts, MemoryOrders, MemoryRows
        )
    if request.param == "mongomock":
        factory = MongoUnitOfWorkFactory(create_mongomock_client(), f"w{uuid.uuid4().hex[:8]}")
        return Where("mongomock", factory, MongoAccounts, MongoOrders, MongoRows)
    client, database = request.getfixturevalue("mongo_client"), request.getfixturevalue("mongo_db")
    factory = MongoUnitOfWorkFactory(client, database.name)
    return Where("embedded", factory, MongoAccounts, MongoOrders, MongoRows)


async def test_versioned_writes_refuse_a_stale_version(where: Where) -> None:
    dispatcher = where.dispatcher()
    await dispatcher.apply(Account(id="a-1"))
    [first] = await dispatcher.fetch_domain(Account, ["a-1"])
    [second] = await dispatcher.fetch_domain(Account, ["a-1"])
    first.balance = 1
    await dispatcher.apply(first)
    with pytest.raises(ConcurrencyError):
        await dispatcher.apply(second)


async def test_rollback_undoes_a_failed_unit_or_says_it_cannot(where: Where) -> None:
    dispatcher = where.dispatcher()
    account = Account(id="a-2")
    if where.name == "mongomock":
        with (  # noqa: PT031 - the warning is issued by the rollback the raise causes
            pytest.warns(NonTransactionalRollbackWarning),
            pytest.raises(RuntimeError),
        ):
            async with where.factory() as uow:
                await dispatcher.apply(account, uow=uow)
                raise RuntimeError("abort")
        assert len(await dispatcher.fetch_domain(Account, ["a-2"])) == 1  # the write stayed
        return
    with pytest.raises(RuntimeError):
        async with where.factory() as uow:
            await dispatcher.apply(account, uow=uow)
            raise RuntimeError("abort")
    assert await dispatcher.fetch_domain(Account, ["a-2"]) == []
    assert account.version == 0


async def test_event_sourced_append_load_and_conflict(where: Where) -> None:
    dispatcher = where.dispatcher()
    order = Order(id="o-1", customer_id="c")
    order.add_event(OrderCreated(order_id="o-1", customer_id="c", total=Decimal("2.50")))
    await dispatcher.apply(order)
    [loaded] = await dispatcher.fetch_domain(Order, ["o-1"])
    assert (loaded.total, loaded.version) == (Decimal("2.50"), 1)
    stale = Order(id="o-1", customer_id="c")
    stale.add_event(OrderCreated(order_id="o-1", customer_id="c", total=Decimal("9")))
    with pytest.raises(ConcurrencyError):
        await dispatcher.apply(stale)


async def test_ids_specifications_ordering_offset_pages_and_stream(where: Where) -> None:
    await where.seed_rows(10)
    dispatcher = where.dispatcher()
    assert [r.id for r in await (await dispatcher.fetch(Row, ["r-03", "r-01"]))] == [
        "r-03",
        "r-01",
    ]
    spec = SpecificationBuilder().where("group", "=", "a").build()
    options = QueryOptions().with_specification(spec).with_ordering("-id")
    result = await dispatcher.fetch(Row, options.with_pagination(limit=2, offset=1))
    assert [r.id for r in await result] == ["r-07", "r-05"]
    assert await result.count() == 5
    assert [r.id async for r in (await dispatcher.fetch(Row, options)).stream(2)] == [
        "r-09",
        "r-07",
        "r-05",
        "r-03",
        "r-01",
    ]


async def test_keyset_cursors_page_exactly(where: Where) -> None:
    if where.name == "mongomock":
        await where.seed_rows(4)
        options = QueryOptions().with_ordering("id").with_pagination(limit=2)
        page = await (await where.dispatcher().fetch(Row, options)).page()
        with pytest.raises(MongomockLimitError, match="mongomock"):
            await (await where.dispatcher().fetch(Row, options.with_cursor(page.next_cursor)))
        return
    await where.seed_rows(5)
    dispatcher = where.dispatcher()
    options = QueryOptions().with_ordering("id").with_pagination(limit=2)
    seen: list[str] = []
    cursor = None
    while True:
        current = options if cursor is None else options.with_cursor(cursor)
        page = await (await dispatcher.fetch(Row, current)).page()
        seen += [r.id for r in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"r-{n:02d}" for n in range(5)]


async def test_ranges_and_ordering_on_decimal_fields(where: Where) -> None:
    await where.seed_rows(6)
    spec = SpecificationBuilder().where("amount", ">", Decimal("3")).build()
    options = QueryOptions().with_specification(spec).with_ordering("-amount")
    if where.name == "mongomock":
        with pytest.raises(MongomockLimitError, match="mongomock"):
            await (await where.dispatcher().fetch(Row, options))
        return
    assert [r.id for r in await (await where.dispatcher().fetch(Row, options))] == [
        "r-05",
        "r-04",
        "r-03",
    ]


async def test_projections_are_fed_by_the_worker_or_the_in_memory_runner(where: Where) -> None:
    dispatcher = where.dispatcher()
    order = Order(id="o-2", customer_id="c")
    order.add_event(OrderCreated(order_id="o-2", customer_id="c", total=Decimal("1.50")))
    await dispatcher.apply(order)
    if where.name == "memory":
        runner = InMemoryProjectionRunner(
            OrderSummaryProjection(), store=shared_projection_store(where.factory)
        )
        await runner.apply_store(shared_event_store(where.factory))
        async with where.factory() as uow:
            [summary] = await MemorySummaries().fetch(["o-2"], uow)
        assert summary.total == Decimal("1.50")
        return
    worker = MongoProjectionWorker(OrderSummaryProjection(), where.factory)
    if where.name == "mongomock":
        with pytest.raises(ConfigurationError, match="change streams"):
            await worker.run_until_caught_up()
        return
    await worker.run_until_caught_up()
    stored = await where.factory.database["order_summaries"].find_one({"_id": "o-2"})
    assert stored is not None
    assert stored["total"] == Decimal("1.50")
