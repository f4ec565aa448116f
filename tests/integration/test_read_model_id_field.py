"""Specifications name the DTO's id field; the read side maps it to the stored ``_id``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cqrs_mongo import QueryOptions, SpecificationBuilder
from cqrs_mongo.mongo import MongoReadModelPersistence, MongoUnitOfWorkFactory


class Item(BaseModel):
    id: str
    rank: int


class Items(MongoReadModelPersistence[Item, str]):
    dto_type = Item
    collection = "items"


async def test_id_field_filters_orders_and_pages_on_the_stored_id(
    mongo_client: Any, mongo_db: Any
) -> None:
    await mongo_db["items"].insert_many([{"_id": f"i{n}", "rank": n % 3} for n in range(7)])
    factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name)
    spec = SpecificationBuilder().where("id", "in", ["i1", "i2", "i4", "i6"]).build()
    options = QueryOptions().with_specification(spec).with_ordering("rank", "-id")

    async with factory(read_only=True) as uow:
        handler = Items()
        everything = [item.id for item in await handler.search(options, uow)]
        assert everything == ["i6", "i4", "i1", "i2"]

        seen: list[str] = []
        page = await handler.fetch_page(options.with_pagination(limit=3), uow)
        seen += [item.id for item in page.items]
        assert page.total == 4
        assert page.next_cursor is not None
        page = await handler.fetch_page(
            options.with_pagination(limit=3).with_cursor(page.next_cursor), uow
        )
        seen += [item.id for item in page.items]
        assert seen == everything
