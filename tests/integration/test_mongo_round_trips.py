"""Round trips: how many commands each adapter operation sends (command_counter)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from cqrs_mongo.domain import AggregateRoot
from cqrs_mongo.mongo import (
    MongoRepository,
    MongoSpecificationPersistence,
    MongoUnitOfWorkFactory,
)
from cqrs_mongo.specifications import QueryOptions, SpecificationBuilder
from cqrs_mongo.testing import CommandCounter

pytestmark = pytest.mark.requires_transactions


class Item(AggregateRoot[str]):
    name: str = ""


class ItemRepository(MongoRepository[Item, str]):
    entity_type = Item
    collection = "items"


class Row(BaseModel):
    id: int
    group: str
    at: datetime


class RowSearch(MongoSpecificationPersistence[Row]):
    dto_type = Row
    collection = "rows"


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name)


async def seed_items(factory: MongoUnitOfWorkFactory, count: int) -> list[str]:
    ids = [f"i-{n:03d}" for n in range(count)]
    await factory.database["items"].insert_many([{"_id": i, "version": 1} for i in ids])
    return ids


async def seed_rows(factory: MongoUnitOfWorkFactory, count: int) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    await factory.database["rows"].insert_many(
        [{"_id": n, "group": "g", "at": start + timedelta(minutes=n)} for n in range(count)]
    )


def group_g() -> QueryOptions:
    spec = SpecificationBuilder().where("group", "=", "g").build()
    return QueryOptions().with_specification(spec).with_ordering("at")


async def test_retrieving_100_aggregates_is_one_find(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    ids = await seed_items(factory, 150)
    async with factory(read_only=True) as uow:
        with command_counter.measure() as counts:
            found = await ItemRepository().retrieve(ids[:100], uow)
    assert len(found) == 100
    assert dict(counts) == {"find": 1}


async def test_retrieving_150_aggregates_is_still_one_find(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    ids = await seed_items(factory, 150)
    async with factory(read_only=True) as uow:
        with command_counter.measure() as counts:
            found = await ItemRepository().retrieve(ids, uow)
    assert len(found) == 150
    assert dict(counts) == {"find": 1}


async def test_persisting_one_new_aggregate_is_one_insert_without_a_commit(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    async with factory(read_only=True):
        pass  # learn the deployment's capabilities (hello is not counted anyway)
    with command_counter.measure() as counts:
        async with factory() as uow:
            await ItemRepository().persist(Item(id="new"), uow)
    assert dict(counts) == {"insert": 1}  # the unit's only operation: sent alone


async def test_updating_one_aggregate_is_update_plus_commit(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    await seed_items(factory, 1)
    async with factory() as uow:
        (item,) = await ItemRepository().retrieve(["i-000"], uow)
        item.name = "renamed"
        with command_counter.measure() as counts:
            await ItemRepository().persist(item, uow)
    assert dict(counts) == {"update": 1, "commitTransaction": 1}


async def test_a_page_with_total_is_one_command(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    await seed_rows(factory, 120)
    async with factory(read_only=True) as uow:
        with command_counter.measure() as counts:
            page = await RowSearch().fetch_page(group_g().with_pagination(limit=50), uow)
    assert (len(page.items), page.total) == (50, 120)
    assert sum(counts.values()) <= 2
    assert dict(counts) == {"aggregate": 1}


async def test_stream_fetches_one_batch_per_get_more(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    await seed_rows(factory, 50)
    async with factory(read_only=True) as uow:
        result = await RowSearch().fetch(group_g(), uow)
        with command_counter.measure() as counts:
            ids = [row.id async for row in result.stream(batch_size=10)]
    assert ids == list(range(50))
    assert counts["find"] == 1
    # 10 rows come with the find, then 4 getMores of 10; the server may need one more
    # (empty) getMore to learn that the cursor is exhausted.
    assert counts["getMore"] in (4, 5)


async def test_count_and_first_are_one_command_each(
    factory: MongoUnitOfWorkFactory, command_counter: CommandCounter
) -> None:
    await seed_rows(factory, 30)
    async with factory(read_only=True) as uow:
        result = await RowSearch().fetch(group_g().with_pagination(limit=5), uow)
        with command_counter.measure() as counts:
            total = await result.count()
        assert (total, sum(counts.values())) == (30, 1)
        with command_counter.measure() as counts:
            first = await result.first()
        assert first is not None
        assert (first.id, dict(counts)) == (0, {"find": 1})
