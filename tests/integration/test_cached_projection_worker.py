"""A DTO fed by a projection, read through the cache, is invalidated by the worker's batch commit.

The real worker on the embedded server, the real Redis: after a command, the cached read model
still shows the old value (correct: the projection has not run); once the worker's batch has
committed, the next cached read shows the new value, every time.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from cqrs_mongo import AggregateRoot, DomainEvent, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import CachingPersistenceDispatcher, RedisCacheService
from cqrs_mongo.mongo import (
    EventSourcedRepository,
    MongoProjectionWorker,
    MongoUnitOfWorkFactory,
    ProjectionPersistence,
)
from cqrs_mongo.projections import Projection, ProjectionContext

pytestmark = [pytest.mark.redis, pytest.mark.requires_transactions]

# 300 in CI (about a minute here); CQRS_CACHE_ITERATIONS=1000 runs the full check.
ITERATIONS = int(os.environ.get("CQRS_CACHE_ITERATIONS", "300"))


class Bumped(DomainEvent):
    by: int


class Counter(AggregateRoot[str]):
    value: int = 0

    def apply_Bumped(self, event: Bumped) -> None:
        self.value += event.by


class CounterRepository(EventSourcedRepository[Counter, str]): ...


class CounterView(BaseModel):
    id: str
    value: int


class CounterViews(Projection):
    name = "counter_views"

    async def on_Bumped(self, event: Bumped, ctx: ProjectionContext) -> None:
        await ctx.upsert(ctx.stream_id, {"$inc": {"value": event.by}})


class CounterViewQueries(ProjectionPersistence[CounterView, str]):
    collection = "counter_views"


async def test_the_cached_read_model_is_new_as_soon_as_the_projection_batch_commits(
    mongo_client: Any, mongo_db: Any
) -> None:
    factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name)
    registry = PersistenceRegistry()
    registry.register_operation(Counter, CounterRepository)
    registry.register_retrieval(Counter, CounterRepository)
    registry.register_query(CounterView, CounterViewQueries)
    inner = PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)
    redis = RedisCacheService.from_url("redis://127.0.0.1:6379/0")
    cached = CachingPersistenceDispatcher(
        inner=inner, cache_service=redis, default_ttl=600, namespace=f"t{uuid.uuid4().hex}"
    )
    worker = MongoProjectionWorker(
        CounterViews(),
        factory,
        after_commit=[cached.projection_invalidator({"counter_views": CounterView})],
    )
    counter = Counter(id="c1")
    counter.add_event(Bumped(by=1))
    await cached.apply(counter)
    await worker.run_until_caught_up()
    stale_after_commit: list[int] = []
    try:
        for n in range(2, ITERATIONS + 2):
            [counter] = await cached.fetch_domain(Counter, ["c1"])
            counter.add_event(Bumped(by=1))
            await cached.apply(counter)
            before = await (await cached.fetch(CounterView, ["c1"]))
            assert [view.value for view in before] == [n - 1]  # the projection has not run
            assert await worker.run_until_caught_up() >= 1  # events read, overlap included
            after = await (await cached.fetch(CounterView, ["c1"]))
            if [view.value for view in after] != [n]:
                stale_after_commit.append(n)
    finally:
        await cached.aclose()
        await redis.aclose()
    assert stale_after_commit == []
    # Every "before" read but the first was answered by the entry the previous "after" read
    # stored: the cache really was in the way, and the worker's commit really cleared it.
    assert cached.stats.hits >= ITERATIONS - 1
