"""A user's own state-stored repository on MongoUnitOfWork (the spec's Pattern 2, translated),
and rollback after several writes of one aggregate (issue 12.1) on the embedded server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from cqrs_mongo import (
    AggregateRoot,
    ConcurrencyError,
    IOperationPersistence,
    IRetrievalPersistence,
    PersistenceDispatcher,
    PersistenceRegistry,
)
from cqrs_mongo.mongo import (
    MongoRepository,
    MongoUnitOfWork,
    MongoUnitOfWorkFactory,
    write_versioned,
)

pytestmark = pytest.mark.requires_transactions


class Customer(AggregateRoot[str]):
    name: str = ""


class CustomerRepository(
    IOperationPersistence[Customer, str], IRetrievalPersistence[Customer, str]
):
    """The spec's Pattern 2 with ``session.begin()``/``session.merge()`` translated."""

    async def persist(self, entity: Customer, uow: MongoUnitOfWork) -> str:
        # Direct state persistence (no events)
        document = {"_id": entity.id, "name": entity.name}
        await write_versioned(uow, "customers", entity, document)
        return entity.id

    async def retrieve(self, ids: Sequence[str], uow: MongoUnitOfWork) -> list[Customer]:
        session = uow.session
        cursor = uow.collection("customers").find({"_id": {"$in": list(ids)}}, session=session)
        rows = {row["_id"]: row async for row in cursor}
        return [self._to_entity(rows[i]) for i in ids if i in rows]

    @staticmethod
    def _to_entity(row: dict[str, Any]) -> Customer:
        return Customer(id=row["_id"], name=row["name"], version=row["version"])


class Counter(AggregateRoot[str]):
    value: int = 0


class CounterRepository(MongoRepository[Counter, str]):
    entity_type = Counter
    collection = "counters"


def _dispatcher(factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Customer, CustomerRepository)
    registry.register_retrieval(Customer, CustomerRepository)
    registry.register_operation(Counter, CounterRepository)
    registry.register_retrieval(Counter, CounterRepository)
    return PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name)


async def test_a_users_repository_gets_optimistic_concurrency(
    factory: MongoUnitOfWorkFactory,
) -> None:
    dispatcher = _dispatcher(factory)
    ada = Customer(id="c-1", name="Ada")
    assert await dispatcher.apply(ada) == "c-1"
    assert ada.version == 1
    [first] = await dispatcher.fetch_domain(Customer, ["c-1"])
    [second] = await dispatcher.fetch_domain(Customer, ["c-1"])
    first.name = "Ada L."
    await dispatcher.apply(first)
    second.name = "Grace"
    with pytest.raises(ConcurrencyError, match="expected version 1, found version 2"):
        await dispatcher.apply(second)
    assert second.version == 1
    [stored] = await dispatcher.fetch_domain(Customer, ["c-1"])
    assert (stored.name, stored.version) == ("Ada L.", 2)
    with pytest.raises(ConcurrencyError, match="no existing version"):
        await dispatcher.apply(Customer(id="c-1", name="again"))


async def test_a_users_repository_write_is_undone_with_its_unit(
    factory: MongoUnitOfWorkFactory,
) -> None:
    dispatcher = _dispatcher(factory)
    ada = Customer(id="c-2", name="Ada")
    with pytest.raises(RuntimeError, match="abort"):
        async with factory() as uow:
            await dispatcher.apply(ada, uow=uow)
            ada.name = "Ada 2"
            await dispatcher.apply(ada, uow=uow)
            assert ada.version == 2
            raise RuntimeError("abort")
    assert ada.version == 0
    assert await dispatcher.fetch_domain(Customer, ["c-2"]) == []
    await dispatcher.apply(ada)
    assert ada.version == 1


async def test_double_persist_then_rollback_cannot_lose_an_update(
    factory: MongoUnitOfWorkFactory,
) -> None:
    dispatcher = _dispatcher(factory)
    await dispatcher.apply(Counter(id="x"))
    [mine] = await dispatcher.fetch_domain(Counter, ["x"])
    with pytest.raises(ValueError, match="boom"):
        async with factory() as uow:
            mine.value = 1
            await dispatcher.apply(mine, uow=uow)
            mine.value = 2
            await dispatcher.apply(mine, uow=uow)
            raise ValueError("boom")
    assert mine.version == 1
    [other] = await dispatcher.fetch_domain(Counter, ["x"])
    other.value = 10
    await dispatcher.apply(other)
    with pytest.raises(ConcurrencyError):
        await dispatcher.apply(mine)
    [stored] = await dispatcher.fetch_domain(Counter, ["x"])
    assert (stored.value, stored.version) == (10, 2)
