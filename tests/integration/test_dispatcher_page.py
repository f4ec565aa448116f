"""A page with its total through the dispatcher is one round trip on MongoDB."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cqrs_mongo import (
    PersistenceDispatcher,
    PersistenceRegistry,
    QueryOptions,
    SpecificationBuilder,
)
from cqrs_mongo.mongo import MongoReadModelPersistence, MongoUnitOfWorkFactory


class Row(BaseModel):
    id: str
    group: str
    n: int


class Rows(MongoReadModelPersistence[Row, str]):
    dto_type = Row
    collection = "rows"


async def test_page_is_one_aggregate_with_items_total_and_next_cursor(
    mongo_client: Any, mongo_db: Any, command_counter: Any
) -> None:
    await mongo_db["rows"].insert_many(
        [{"_id": f"r{n:02}", "group": "a" if n % 2 else "b", "n": n} for n in range(30)]
    )
    registry = PersistenceRegistry()
    registry.register_query_spec(Row, Rows)
    dispatcher = PersistenceDispatcher(
        {"default": MongoUnitOfWorkFactory(mongo_client, mongo_db.name)}, registry
    )
    spec = SpecificationBuilder().where("group", "=", "a").build()
    options = QueryOptions().with_specification(spec).with_ordering("-n").with_pagination(limit=4)

    result = await dispatcher.fetch(Row, options)
    with command_counter.measure() as counts:
        page = await result.page()
    assert dict(counts) == {"aggregate": 1}
    assert [row.n for row in page.items] == [29, 27, 25, 23]
    assert page.total == 15
    assert page.next_cursor is not None

    following = await (await dispatcher.fetch(Row, options.with_cursor(page.next_cursor))).page()
    assert [row.n for row in following.items] == [21, 19, 17, 15]
    assert following.total == 15
