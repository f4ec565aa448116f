"""What mongomock cannot run fails with one clear error naming the limit and the way out.

Keyset pages (``$type`` with a list, MinKey/MaxKey types) and ranges over Decimal fields
are beyond mongomock; they must raise :class:`MongomockLimitError`, never a raw
``TypeError``/``NotImplementedError`` from inside mongomock.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from cqrs_mongo import (
    MongomockLimitError,
    PersistenceDispatcher,
    PersistenceRegistry,
    QueryOptions,
    SpecificationBuilder,
)
from cqrs_mongo.mongo import MongoReadModelPersistence, MongoUnitOfWorkFactory
from cqrs_mongo.mongo.driver import get_database


class Item(BaseModel):
    id: str
    n: int
    price: Decimal


class Items(MongoReadModelPersistence[Item, str]):
    dto_type = Item
    collection = "items"


async def _dispatcher(mongomock_client: Any) -> PersistenceDispatcher:
    database = get_database(mongomock_client, "limits")
    await database["items"].insert_many(
        [{"_id": f"i{n}", "n": n, "price": Decimal(n) / 4} for n in range(6)]
    )
    registry = PersistenceRegistry()
    registry.register_query_spec(Item, Items)
    return PersistenceDispatcher(
        {"default": MongoUnitOfWorkFactory(mongomock_client, "limits")}, registry
    )


def _is_clear(error: MongomockLimitError) -> None:
    message = str(error)
    assert "mongomock" in message
    assert "cqrs_mongo.testing.EmbeddedMongoServer" in message
    assert isinstance(error.__cause__, TypeError | NotImplementedError)


async def test_a_keyset_page_raises_the_mongomock_limit(mongomock_client: Any) -> None:
    dispatcher = await _dispatcher(mongomock_client)
    options = QueryOptions().with_ordering("n").with_pagination(limit=2)
    first = await (await dispatcher.fetch(Item, options)).page()
    assert [item.n for item in first.items] == [0, 1]  # offset pages work on mongomock
    assert first.next_cursor is not None

    following = await dispatcher.fetch(Item, options.with_cursor(first.next_cursor))
    for read in (following.page, following.all, following.first):
        with pytest.raises(MongomockLimitError, match="keyset") as caught:
            await read()
        _is_clear(caught.value)


async def test_a_decimal_range_raises_the_mongomock_limit(mongomock_client: Any) -> None:
    dispatcher = await _dispatcher(mongomock_client)
    spec = SpecificationBuilder().where("price", ">", Decimal("0.5")).build()
    result = await dispatcher.fetch(Item, spec)

    for read in (result.all, result.count, result.page):
        with pytest.raises(MongomockLimitError, match="Decimal") as caught:
            await read()
        _is_clear(caught.value)
    # Equality on a Decimal field is within mongomock's reach.
    same = SpecificationBuilder().where("price", "=", Decimal("0.5")).build()
    assert [item.id for item in await (await dispatcher.fetch(Item, same))] == ["i2"]
