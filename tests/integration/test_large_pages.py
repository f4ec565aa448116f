"""A page of large documents still works when one ``$facet`` result would pass 16 MiB."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import BaseModel

from cqrs_mongo import PersistenceDispatcher, PersistenceRegistry, QueryOptions
from cqrs_mongo.mongo import MongoReadModelPersistence, MongoUnitOfWorkFactory
from cqrs_mongo.testing import fail_command

MEGABYTE = "x" * (1024 * 1024)


class Blob(BaseModel):
    id: str
    n: int
    body: str


class Blobs(MongoReadModelPersistence[Blob, str]):
    dto_type = Blob
    collection = "blobs"


async def _dispatcher(mongo_client: Any, mongo_db: Any) -> PersistenceDispatcher:
    for n in range(21):  # one by one: a 21 MB insert_many would itself pass the limit
        await mongo_db["blobs"].insert_one({"_id": f"b{n:02}", "n": n, "body": MEGABYTE})
    registry = PersistenceRegistry()
    registry.register_query_spec(Blob, Blobs)
    return PersistenceDispatcher(
        {"default": MongoUnitOfWorkFactory(mongo_client, mongo_db.name)}, registry
    )


# mongod refuses a $facet output over 16 MiB: BSONObjectTooLarge (10334) before 4.4,
# 4031700 since; past $facet's 100 MB of memory, QueryExceededMemoryLimitNoDiskUseAllowed.
@pytest.mark.parametrize("code", [10334, 4031700, 292])
async def test_a_page_too_large_for_one_facet_falls_back_to_find_and_count(
    mongo_client: Any, mongo_db: Any, command_counter: Any, code: int
) -> None:
    dispatcher = await _dispatcher(mongo_client, mongo_db)
    options = QueryOptions().with_ordering("n").with_pagination(limit=20)
    result = await dispatcher.fetch(Blob, options)

    started = time.perf_counter()
    async with fail_command(mongo_client, ["aggregate"], error_code=code):
        with command_counter.measure() as counts:
            page = await result.page()

    assert [blob.n for blob in page.items] == list(range(20))
    assert all(len(blob.body) == len(MEGABYTE) for blob in page.items)
    assert page.total == 21
    assert page.next_cursor is not None
    # The refused $facet, then the page (find) and the total (count_documents aggregates).
    assert counts["find"] == 1
    assert counts["aggregate"] == 2
    assert time.perf_counter() - started < 30
    following = await (await dispatcher.fetch(Blob, options.with_cursor(page.next_cursor))).page()
    assert ([blob.n for blob in following.items], following.total) == ([20], 21)


async def test_other_aggregate_errors_are_not_swallowed(mongo_client: Any, mongo_db: Any) -> None:
    dispatcher = await _dispatcher(mongo_client, mongo_db)
    result = await dispatcher.fetch(Blob, QueryOptions().with_pagination(limit=2))

    async with fail_command(mongo_client, ["aggregate"], error_code=2):
        with pytest.raises(Exception, match="Failing command") as caught:
            await result.page()
    assert getattr(caught.value, "code", None) == 2


async def test_a_page_inside_a_transaction_uses_find_and_count(
    mongo_client: Any, mongo_db: Any, command_counter: Any
) -> None:
    # A failed command aborts the transaction it runs in, so there the page does not try
    # a $facet that might be refused.
    dispatcher = await _dispatcher(mongo_client, mongo_db)
    factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name)
    options = QueryOptions().with_ordering("-n").with_pagination(limit=3)

    async with factory() as uow:
        with command_counter.measure() as counts:
            page = await (await dispatcher.fetch(Blob, options, uow=uow)).page()
    assert ([blob.n for blob in page.items], page.total) == ([20, 19, 18], 21)
    assert counts["find"] == 1
