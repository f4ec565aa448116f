"""CachingPersistenceDispatcher over the in-memory dispatcher: read-through, invalidation, races."""

from __future__ import annotations

import asyncio
from typing import Any

import fakeredis
import pytest
from caching_doubles import CountingCache, FakeClock, Order, OrderView, World

from cqrs_mongo import (
    ConcurrencyError,
    HookEvent,
    Hooks,
    InvalidSpecificationError,
    IPersistenceDispatcher,
    SpecificationBuilder,
)
from cqrs_mongo.cache import InMemoryCacheService, RedisCacheService
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher


class Boom(Exception):
    pass


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture(params=["memory", "fakeredis"])
def cache(request: pytest.FixtureRequest) -> CountingCache:
    if request.param == "memory":
        return CountingCache(InMemoryCacheService())
    return CountingCache(RedisCacheService(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())))


@pytest.fixture
def cached(world: World, cache: CountingCache) -> CachingPersistenceDispatcher:
    return CachingPersistenceDispatcher(
        inner=world.dispatcher, cache_service=cache, default_ttl=300
    )


# --- read-through ------------------------------------------------------------------------------


async def test_a_warm_read_of_many_ids_is_one_cache_read_and_no_database_read(
    world: World, cache: CountingCache, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders(*(f"o{i}" for i in range(20)))
    await cached.fetch_domain(Order, [f"o{i}" for i in range(20)] + ["ghost"])
    reads, cache.calls = world.probe.reads, []

    found = await cached.fetch_domain(Order, ["o7", "ghost", "o3", "o19", "o7"])

    assert [o.id for o in found] == ["o7", "o3", "o19"]
    assert world.probe.reads == reads
    assert cache.calls == ["get_many"]


async def test_a_cold_read_loads_only_the_missing_ids_in_one_call(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("a", "b", "c")
    await cached.fetch_domain(Order, ["b"])

    found = await cached.fetch_domain(Order, ["c", "b", "a"])

    assert [o.id for o in found] == ["c", "b", "a"]
    assert world.probe.retrieves[-1] == ["c", "a"]


async def test_cached_aggregates_keep_their_version_and_are_fresh_copies(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    order = await world.rename("o1", "paid")
    await world.dispatcher.apply(order)  # version 2 now
    (first,) = await cached.fetch_domain(Order, ["o1"])
    first.status = "mutated by caller"

    (second,) = await cached.fetch_domain(Order, ["o1"])

    assert (second.version, second.status, second.pending_events) == (2, "paid", ())
    assert second is not first


async def test_absent_ids_are_remembered_until_written(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    assert await cached.fetch_domain(Order, ["later"]) == []
    reads = world.probe.reads
    assert await cached.fetch_domain(Order, ["later"]) == []
    assert world.probe.reads == reads

    await cached.apply(Order(id="later", customer="c"))

    assert [o.id for o in await cached.fetch_domain(Order, ["later"])] == ["later"]


async def test_fetch_by_ids_is_lazy_cached_and_streams_in_batches(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    for i in range(5):
        await world.save_view(OrderView(id=f"v{i}", status="open"))
    result = await cached.fetch(OrderView, ["v4", "v0", "nope", "v2"])
    assert world.probe.queries == []

    assert [v.id for v in await result] == ["v4", "v0", "v2"]
    queries = len(world.probe.queries)
    assert [v.id async for v in result.stream(batch_size=2)] == ["v4", "v0", "v2"]
    assert await result.count() == 3
    assert len(world.probe.queries) == queries


async def test_fetch_by_specification_is_passed_through_uncached(
    world: World, cache: CountingCache, cached: CachingPersistenceDispatcher
) -> None:
    await world.save_view(OrderView(id="v1", status="open"))
    spec = SpecificationBuilder().where("status", "=", "open").build()

    for _ in range(2):
        assert [v.id for v in await (await cached.fetch(OrderView, spec))] == ["v1"]

    assert len(world.probe.queries) == 2
    assert cache.calls == []


async def test_a_single_string_is_refused_as_by_the_inner_dispatcher(
    cached: CachingPersistenceDispatcher,
) -> None:
    with pytest.raises(InvalidSpecificationError):
        await cached.fetch_domain(Order, "o1")
    with pytest.raises(InvalidSpecificationError):
        await cached.fetch(OrderView, "v1")


async def test_per_type_ttls_override_the_default(world: World) -> None:
    clock = FakeClock()
    cached = CachingPersistenceDispatcher(
        inner=world.dispatcher,
        cache_service=InMemoryCacheService(clock=clock),
        default_ttl=300,
        ttls={OrderView: 10},
    )
    await world.seed_orders("o1")
    await world.save_view(OrderView(id="o1", status="open"))
    await cached.fetch_domain(Order, ["o1"])
    await (await cached.fetch(OrderView, ["o1"]))
    clock.now += 11
    retrieves, queries = len(world.probe.retrieves), len(world.probe.queries)

    await cached.fetch_domain(Order, ["o1"])
    await (await cached.fetch(OrderView, ["o1"]))

    assert len(world.probe.retrieves) == retrieves
    assert len(world.probe.queries) == queries + 1


async def test_a_ttl_of_zero_turns_caching_off_for_a_type(
    world: World, cache: CountingCache
) -> None:
    cached = CachingPersistenceDispatcher(
        inner=world.dispatcher, cache_service=cache, ttls={Order: 0}
    )
    await world.seed_orders("o1")
    await cached.fetch_domain(Order, ["o1"])
    await cached.fetch_domain(Order, ["o1"])
    assert len(world.probe.retrieves) == 2
    assert cache.calls == []


async def test_items_without_a_usable_id_are_served_uncached(world: World) -> None:
    cached = CachingPersistenceDispatcher(
        inner=world.dispatcher,
        cache_service=InMemoryCacheService(),
        id_of=lambda item: f"other-{item.id}",
    )
    await world.seed_orders("o1", "o2")
    for _ in range(2):
        assert [o.id for o in await cached.fetch_domain(Order, ["o2", "o1"])] == ["o2", "o1"]
    assert world.probe.retrieves[-1] == ["o2", "o1"]


# --- invalidation, units of work ---------------------------------------------------------------


async def test_apply_without_a_unit_invalidates_at_once(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    await cached.fetch_domain(Order, ["o1"])

    await cached.apply(await world.rename("o1", "paid"))

    (order,) = await cached.fetch_domain(Order, ["o1"])
    assert (order.status, order.version) == ("paid", 2)


async def test_apply_in_a_unit_invalidates_after_commit_only(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    await cached.fetch_domain(Order, ["o1"])

    async with world.uow_factory() as uow:
        (order,) = await cached.fetch_domain(Order, ["o1"], uow=uow)
        order.status = "paid"
        await cached.apply(order, uow=uow)
        (outside,) = await cached.fetch_domain(Order, ["o1"])  # another reader, no unit
        assert outside.status == "new"
        assert cached.stats.invalidations == 0

    (after,) = await cached.fetch_domain(Order, ["o1"])
    assert after.status == "paid"


async def test_a_rolled_back_unit_invalidates_nothing_and_caches_nothing_it_read(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    await world.save_view(OrderView(id="v1", status="open"))
    await cached.fetch_domain(Order, ["o1"])

    with pytest.raises(Boom):
        async with world.uow_factory() as uow:
            (order,) = await cached.fetch_domain(Order, ["o1"], uow=uow)
            order.status = "doomed"
            await cached.apply(order, uow=uow)
            (inside,) = await cached.fetch_domain(Order, ["o1"], uow=uow)
            assert inside.status == "doomed"  # its own write, read past the cache
            await world.save_view(OrderView(id="v1", status="x"))
            await (await cached.fetch(OrderView, ["v1"], uow=uow))
            raise Boom

    reads = world.probe.reads
    (order,) = await cached.fetch_domain(Order, ["o1"])
    assert (order.status, order.version) == ("new", 1)
    assert world.probe.reads == reads  # still served from the cache: nothing was invalidated
    assert cached.stats.invalidations == 0
    assert cached.stats.bypassed == 2


async def test_a_unit_that_has_not_written_reads_the_cache_and_fills_it(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("warm", "cold")
    await cached.fetch_domain(Order, ["warm"])

    async with world.uow_factory() as uow:
        found = await cached.fetch_domain(Order, ["warm", "cold"], uow=uow)
    assert [o.id for o in found] == ["warm", "cold"]
    assert world.probe.retrieves[-1] == ["cold"]
    reads = world.probe.reads

    async with world.uow_factory() as uow:
        again = await cached.fetch_domain(Order, ["cold", "warm"], uow=uow)
    await cached.fetch_domain(Order, ["cold"])
    assert [o.id for o in again] == ["cold", "warm"]
    assert world.probe.reads == reads  # the first unit stored what it missed


async def test_a_read_only_unit_fills_the_cache(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    uow = world.uow_factory()
    uow.read_only = True
    async with uow:
        await cached.fetch_domain(Order, ["o1"], uow=uow)
    reads = world.probe.reads
    await cached.fetch_domain(Order, ["o1"])
    assert world.probe.reads == reads


async def test_a_write_invalidates_the_related_read_models_named_for_it(world: World) -> None:
    cached = CachingPersistenceDispatcher(
        inner=world.dispatcher,
        cache_service=InMemoryCacheService(),
        invalidates={Order: [OrderView]},
    )
    await world.seed_orders("o1")
    await world.save_view(OrderView(id="o1", status="new"))
    await (await cached.fetch(OrderView, ["o1"]))
    await world.save_view(OrderView(id="o1", status="paid"))  # a projection's write

    await cached.apply(await world.rename("o1", "paid"))

    assert [v.status for v in await (await cached.fetch(OrderView, ["o1"]))] == ["paid"]


async def test_explicit_invalidate_serves_a_projection_writer(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.save_view(OrderView(id="v1", status="new"))
    await (await cached.fetch(OrderView, ["v1"]))
    await world.save_view(OrderView(id="v1", status="shipped"))

    await cached.invalidate(OrderView, ["v1"])

    assert [v.status for v in await (await cached.fetch(OrderView, ["v1"]))] == ["shipped"]


# --- concurrency -------------------------------------------------------------------------------


async def test_a_reader_that_stores_an_old_value_after_an_invalidation_is_never_served(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    world.probe.hold = True
    reader = asyncio.create_task(cached.fetch_domain(Order, ["o1"]))
    await world.probe.read_done.wait()  # the reader has read status "new" from the store

    await cached.apply(await world.rename("o1", "paid"))  # commits and invalidates
    world.probe.release.set()
    (stale,) = await reader  # ...and now stores what it read
    assert stale.status == "new"

    (fresh,) = await cached.fetch_domain(Order, ["o1"])
    (again,) = await cached.fetch_domain(Order, ["o1"])
    assert (fresh.status, again.status) == ("paid", "paid")


async def test_the_race_is_also_safe_when_the_writer_commits_a_unit(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    world.probe.hold = True
    reader = asyncio.create_task(cached.fetch_domain(Order, ["o1"]))
    await world.probe.read_done.wait()

    async with world.uow_factory() as uow:
        (order,) = await world.dispatcher.fetch_domain(Order, ["o1"], uow=uow)
        order.status = "paid"
        await cached.apply(order, uow=uow)
    world.probe.release.set()
    await reader

    assert [o.status for o in await cached.fetch_domain(Order, ["o1"])] == ["paid"]


async def test_concurrent_misses_of_one_id_cause_one_database_read(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    world.probe.hold = True
    readers = [asyncio.create_task(cached.fetch_domain(Order, ["o1"])) for _ in range(10)]
    await world.probe.read_done.wait()
    world.probe.release.set()

    results = await asyncio.gather(*readers)

    assert [len(r) for r in results] == [1] * 10
    assert world.probe.retrieves == [["o1"]]
    assert len({id(r[0]) for r in results}) == 10  # each caller got its own object


async def test_overlapping_batches_share_the_ids_in_flight(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("a", "b", "c")
    world.probe.hold = True
    first = asyncio.create_task(cached.fetch_domain(Order, ["a", "b"]))
    await world.probe.read_done.wait()
    second = asyncio.create_task(cached.fetch_domain(Order, ["b", "c"]))
    await asyncio.sleep(0)
    world.probe.release.set()

    assert [o.id for o in await second] == ["b", "c"]
    assert [o.id for o in await first] == ["a", "b"]
    assert world.probe.retrieves == [["a", "b"], ["c"]]


async def test_when_the_leading_read_fails_the_waiting_readers_load_for_themselves(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    world.probe.hold = True
    leader = asyncio.create_task(cached.fetch_domain(Order, ["o1"]))
    await world.probe.read_done.wait()
    followers = [asyncio.create_task(cached.fetch_domain(Order, ["o1"])) for _ in range(3)]
    await asyncio.sleep(0)
    leader.cancel()

    results = await asyncio.gather(*followers)

    assert [[o.id for o in r] for r in results] == [["o1"]] * 3
    with pytest.raises(asyncio.CancelledError):
        await leader


# --- bad entries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage", [b"\x00\xffnot an entry", b"cm1|gen|Jnot json", b'cm1|gen|J{"id": 5}']
)
async def test_garbage_entries_are_misses_and_are_deleted(world: World, garbage: bytes) -> None:
    store = InMemoryCacheService()
    cached = CachingPersistenceDispatcher(inner=world.dispatcher, cache_service=store)
    await world.seed_orders("o1")
    await cached.fetch_domain(Order, ["o1"])
    entry_keys = [k for k in store._entries if ":domain:" in k]
    generation = await store.get(next(k for k in store._entries if ":gen:" in k))
    epoch = await store.get(next(k for k in store._entries if k.endswith(":epoch")))
    assert generation is not None
    assert epoch is not None
    await store.set(entry_keys[0], garbage.replace(b"gen", epoch + b"~" + generation))

    (order,) = await cached.fetch_domain(Order, ["o1"])

    assert order.id == "o1"
    assert cached.stats.garbage == 1
    reads = world.probe.reads
    await cached.fetch_domain(Order, ["o1"])  # the garbage was replaced by a good entry
    assert world.probe.reads == reads


async def test_hooks_see_hits_and_misses(world: World) -> None:
    seen: list[HookEvent] = []
    cached = CachingPersistenceDispatcher(
        inner=world.dispatcher, cache_service=InMemoryCacheService(), hooks=Hooks([seen.append])
    )
    await world.seed_orders("a", "b")
    await cached.fetch_domain(Order, ["a"])
    await cached.fetch_domain(Order, ["a", "b"])

    after = [e.detail for e in seen if e.operation == "cache.read" and e.phase == "after"]
    assert [(d["hits"], d["misses"]) for d in after] == [(0, 1), (1, 1)]


def test_negative_ttls_are_refused(world: World) -> None:
    with pytest.raises(ValueError, match="Order"):
        CachingPersistenceDispatcher(
            inner=world.dispatcher, cache_service=InMemoryCacheService(), ttls={Order: -1}
        )


async def test_the_seed_example_runs_and_the_wrapper_is_a_dispatcher(world: World) -> None:
    dispatcher: IPersistenceDispatcher = world.dispatcher
    cached_dispatcher: IPersistenceDispatcher = CachingPersistenceDispatcher(
        inner=dispatcher,
        cache_service=InMemoryCacheService(),
        default_ttl=300,  # 5 minutes
    )
    await world.seed_orders("order_1")
    await world.save_view(OrderView(id="order_1", status="new"))

    async with world.uow_factory() as uow:
        orders = await cached_dispatcher.fetch_domain(Order, ["order_1"], uow=uow)
        result = await cached_dispatcher.fetch(OrderView, ["order_1"], uow=uow)
        views = await result
        orders[0].status = "submitted"
        await cached_dispatcher.apply(orders[0], uow=uow)  # Invalidates order cache

    assert [v.id for v in views] == ["order_1"]
    (order,) = await cached_dispatcher.fetch_domain(Order, ["order_1"])
    assert (order.status, order.version) == ("submitted", 2)


async def test_a_unit_written_by_a_handler_that_does_not_record_writes_still_bypasses(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    await cached.fetch_domain(Order, ["o1"])

    async with world.uow_factory() as uow:
        (order,) = await cached.fetch_domain(Order, ["o1"], uow=uow)
        order.status = "paid"
        await cached.apply(order, uow=uow)
        uow.has_written = False  # as if the handler had not called uow.record_write()
        (mine,) = await cached.fetch_domain(Order, ["o1"], uow=uow)

    assert mine.status == "paid"


# --- projection read models --------------------------------------------------------------------


async def test_the_projection_invalidator_invalidates_exactly_the_ids_a_batch_changed(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    for view_id in ("v1", "v2"):
        await world.save_view(OrderView(id=view_id, status="new"))
    await (await cached.fetch(OrderView, ["v1", "v2"]))
    for view_id in ("v1", "v2"):
        await world.save_view(OrderView(id=view_id, status="shipped"))  # the batch's writes
    invalidate = cached.projection_invalidator({"order_views": OrderView})

    # As the worker calls it once the batch committed: only v1 changed in the mapped table.
    await invalidate({"order_views": frozenset({"v1"}), "checkpoints": frozenset({"p"})})

    views = await (await cached.fetch(OrderView, ["v1", "v2"]))
    assert [(v.id, v.status) for v in views] == [("v1", "shipped"), ("v2", "new")]
    assert cached.stats.invalidations == 1


async def test_the_projection_invalidator_accepts_several_types_per_collection(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    await world.save_view(OrderView(id="o1", status="new"))
    await cached.fetch_domain(Order, ["o1"])
    await (await cached.fetch(OrderView, ["o1"]))
    invalidate = cached.projection_invalidator({"orders": [Order, OrderView]})

    outcome = invalidate({"orders": frozenset({"o1"})})
    await outcome

    assert cached.stats.invalidations == 2
    reads = world.probe.reads
    await cached.fetch_domain(Order, ["o1"])
    await (await cached.fetch(OrderView, ["o1"]))
    assert world.probe.reads == reads + 2


def test_the_projection_invalidator_refuses_what_is_not_a_type(
    cached: CachingPersistenceDispatcher,
) -> None:
    with pytest.raises(TypeError, match="order_views"):
        cached.projection_invalidator({"order_views": "OrderView"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="order_views"):
        cached.projection_invalidator({"order_views": []})


# --- commits whose outcome is unknown ----------------------------------------------------------


class CommitUnknown:
    """An inner dispatcher whose apply writes, then fails as a commit with no known outcome."""

    def __init__(self, world: World) -> None:
        self.world = world

    async def apply(self, entity: Any, uow: Any = None, events: Any = None) -> Any:
        await self.world.dispatcher.apply(entity, uow=uow, events=events)
        raise Boom("commit outcome unknown")

    async def fetch_domain(self, entity_type: Any, ids: Any, uow: Any = None) -> Any:
        return await self.world.dispatcher.fetch_domain(entity_type, ids, uow=uow)

    async def fetch(self, result_type: Any, criteria: Any, uow: Any = None) -> Any:
        return await self.world.dispatcher.fetch(result_type, criteria, uow=uow)


async def test_an_apply_that_may_have_committed_holds_the_entry_until_the_hold_ends(
    world: World,
) -> None:
    clock = FakeClock()
    cached = CachingPersistenceDispatcher(
        inner=CommitUnknown(world),
        cache_service=InMemoryCacheService(clock=clock),
        unknown_commit_hold=30,
    )
    await world.seed_orders("o1")
    await cached.fetch_domain(Order, ["o1"])

    with pytest.raises(Boom):
        await cached.apply(await world.rename("o1", "paid"))

    reads = world.probe.reads
    found = [await cached.fetch_domain(Order, ["o1"]) for _ in range(2)]
    assert [o.status for (o,) in found] == ["paid", "paid"]
    assert world.probe.reads == reads + 2  # held: neither served nor stored
    clock.now += 31  # the hold expired: caching resumes
    await cached.fetch_domain(Order, ["o1"])
    await cached.fetch_domain(Order, ["o1"])
    assert world.probe.reads == reads + 3


async def test_a_conflicting_apply_did_not_commit_and_holds_nothing(
    world: World, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    (stale,) = await world.dispatcher.fetch_domain(Order, ["o1"])
    await world.dispatcher.apply(await world.rename("o1", "paid"))
    await cached.fetch_domain(Order, ["o1"])

    with pytest.raises(ConcurrencyError):
        await cached.apply(stale)

    reads = world.probe.reads
    await cached.fetch_domain(Order, ["o1"])
    assert world.probe.reads == reads
    assert cached.stats.invalidations == 0
