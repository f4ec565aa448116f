"""A cached read model fed by a projection is never stale once the projection's batch commits.

The projection batch is played here by a unit of work that writes the read-model documents and,
once committed, calls the invalidator exactly as the projection worker's ``after_commit`` does
(``{collection: changed ids}``); readers race it throughout.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pydantic import BaseModel
from redis.asyncio import Redis

from cqrs_mongo import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.mongo import MongoQueryPersistence, MongoUnitOfWorkFactory

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"
ITERATIONS = 1000


class OrderSummaryDTO(BaseModel):
    id: str
    status: str
    revision: int


class OrderSummaries(MongoQueryPersistence[OrderSummaryDTO, str]):
    dto_type = OrderSummaryDTO
    collection = "order_summaries"


@pytest_asyncio.fixture
async def cached(mongo_client: Any, mongo_db: Any) -> AsyncIterator[CachingPersistenceDispatcher]:
    namespace = f"test-projected-{uuid.uuid4().hex[:12]}"
    client = Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    registry = PersistenceRegistry()
    registry.register_query(OrderSummaryDTO, OrderSummaries)
    inner = PersistenceDispatcher(
        uow_factories={"default": MongoUnitOfWorkFactory(mongo_client, mongo_db.name)},
        registry=registry,
    )
    yield CachingPersistenceDispatcher(
        inner=inner, cache_service=RedisCacheService(client), namespace=namespace
    )
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_the_cached_summary_is_new_after_every_batch_commit_for_1000_batches(
    cached: CachingPersistenceDispatcher, mongo_client: Any, mongo_db: Any
) -> None:
    factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name)
    after_commit = cached.projection_invalidator({"order_summaries": OrderSummaryDTO})
    summaries = mongo_db["order_summaries"]
    ids = ["o1", "o2"]
    await summaries.insert_many([{"_id": i, "status": "new", "revision": 0} for i in ids])
    stop = asyncio.Event()

    async def racing_reader() -> None:  # fills the cache at every moment it can
        while not stop.is_set():
            await (await cached.fetch(OrderSummaryDTO, ids))
            await asyncio.sleep(0)

    async def read(summary_id: str) -> OrderSummaryDTO:
        (summary,) = await (await cached.fetch(OrderSummaryDTO, [summary_id]))
        return summary

    racers = [asyncio.create_task(racing_reader()) for _ in range(2)]
    stale: list[tuple[int, int]] = []
    try:
        for revision in range(1, ITERATIONS + 1):
            changed = ids[revision % 2]
            before = await read(changed)
            assert before.revision == revision - 2 if revision > 2 else before.revision == 0
            async with factory() as uow:  # the projection's batch
                await summaries.update_one(
                    {"_id": changed},
                    {"$set": {"status": f"s{revision}", "revision": revision}},
                    session=uow.session,
                )
                uow.on_commit(lambda c=changed: after_commit({"order_summaries": frozenset({c})}))
            after = await read(changed)
            if after.revision != revision:
                stale.append((revision, after.revision))
    finally:
        stop.set()
        await asyncio.gather(*racers)

    assert stale == []
    assert cached.stats.hits > ITERATIONS  # the cache really served reads meanwhile
