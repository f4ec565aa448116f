"""The caching dispatcher when the cache fails, hangs or comes back: pass-through, one log line."""

from __future__ import annotations

import pytest
from caching_doubles import CountingCache, FakeClock, Order, OrderView, World

from cqrs_mongo import HookEvent, Hooks
from cqrs_mongo.cache import BreakerState, CircuitBreaker
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher


def outage_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cqrs_mongo.cache"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list[HookEvent]:
    return []


@pytest.fixture
def cached(
    clock: FakeClock, events: list[HookEvent], world: World, cache: CountingCache
) -> CachingPersistenceDispatcher:
    dispatcher = CachingPersistenceDispatcher(
        inner=world.dispatcher,
        cache_service=cache,
        cache_timeout=0.05,
        breaker_cooldown=5.0,
        hooks=Hooks([events.append]),
    )
    dispatcher.cache.breaker.clock = clock
    return dispatcher


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def cache() -> CountingCache:
    return CountingCache()


async def test_a_down_cache_is_passed_through_and_logged_once(
    world: World,
    cache: CountingCache,
    cached: CachingPersistenceDispatcher,
    events: list[HookEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await world.seed_orders("o1", "o2")
    cache.down = True

    for _ in range(5):
        found = await cached.fetch_domain(Order, ["o2", "o1"])
        assert [o.id for o in found] == ["o2", "o1"]
    await cached.apply(await world.rename("o1", "paid"))

    assert len(outage_records(caplog)) == 1
    assert [e.operation for e in events if e.operation == "cache.outage"] == ["cache.outage"]
    assert cache.calls == ["get_many"]  # the breaker skipped every later call
    assert (cached.stats.outages, cached.stats.failures, cached.stats.skipped) == (1, 1, 5)


async def test_a_hanging_cache_costs_at_most_the_cache_timeout(
    world: World, cache: CountingCache, cached: CachingPersistenceDispatcher
) -> None:
    await world.seed_orders("o1")
    cache.hang = True

    assert [o.id for o in await cached.fetch_domain(Order, ["o1"])] == ["o1"]
    assert cached.cache.breaker.state is BreakerState.OPEN


async def test_the_cache_is_used_again_after_the_cooldown_and_the_recovery_is_logged(
    world: World,
    cache: CountingCache,
    cached: CachingPersistenceDispatcher,
    clock: FakeClock,
    events: list[HookEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await world.seed_orders("o1")
    cache.down = True
    await cached.fetch_domain(Order, ["o1"])
    cache.down = False
    await cached.fetch_domain(Order, ["o1"])  # still within the cooldown: skipped
    assert cache.calls == ["get_many"]

    clock.now += 5
    await cached.fetch_domain(Order, ["o1"])
    reads = world.probe.reads
    await cached.fetch_domain(Order, ["o1"])

    assert world.probe.reads == reads  # served from the cache again
    assert len(outage_records(caplog)) == 2  # "unavailable" and "available again"
    assert "cache.recovered" in [e.operation for e in events]


async def test_a_failed_probe_keeps_the_breaker_open_without_logging_again(
    world: World,
    cache: CountingCache,
    cached: CachingPersistenceDispatcher,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await world.seed_orders("o1")
    cache.down = True
    for _ in range(3):
        await cached.fetch_domain(Order, ["o1"])
        clock.now += 5
    # After the first failure each probe is the epoch bump the outage owes, and it fails too.
    assert cache.calls == ["get_many", "set_many", "set_many"]
    assert len(outage_records(caplog)) == 1


async def test_an_invalidation_lost_in_an_outage_is_replayed_before_the_cache_is_read(
    world: World, cache: CountingCache, cached: CachingPersistenceDispatcher, clock: FakeClock
) -> None:
    await world.seed_orders("o1")
    await cached.fetch_domain(Order, ["o1"])  # cached with status "new"
    cache.down = True
    await cached.apply(await world.rename("o1", "paid"))  # invalidation cannot be written
    cache.down = False
    clock.now += 5

    (order,) = await cached.fetch_domain(Order, ["o1"])

    assert order.status == "paid"
    assert cache.calls[-3:-1] == ["set_many", "get_many"]  # the bump, then the read


async def test_while_an_invalidation_is_pending_reads_bypass_the_cache(
    world: World, cache: CountingCache, cached: CachingPersistenceDispatcher, clock: FakeClock
) -> None:
    await world.seed_orders("o1")
    await cached.fetch_domain(Order, ["o1"])
    cache.down = True
    await cached.apply(await world.rename("o1", "paid"))
    clock.now += 5  # the probe (the pending bump) fails again

    (order,) = await cached.fetch_domain(Order, ["o1"])

    assert order.status == "paid"
    assert cache.calls[-1] == "set_many"  # the replayed bump failed, so no cache read


def test_breaker_half_open_lets_one_probe_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(cooldown=2.0, clock=clock)
    assert breaker.record_failure() is True
    assert breaker.record_failure() is False  # same outage
    assert breaker.allow() is False
    clock.now += 2
    assert (breaker.allow(), breaker.allow()) == (True, False)
    clock.now += 2  # the probe never reported: another one may go
    assert breaker.allow() is True
    assert breaker.record_success() is True
    assert breaker.state is BreakerState.CLOSED
    assert breaker.record_success() is False
    with pytest.raises(ValueError, match="cooldown"):
        CircuitBreaker(cooldown=0)


async def test_a_projection_invalidation_during_an_outage_is_kept_and_replayed(
    world: World, cache: CountingCache, cached: CachingPersistenceDispatcher, clock: FakeClock
) -> None:
    await world.save_view(OrderView(id="v1", status="new"))
    await (await cached.fetch(OrderView, ["v1"]))
    await world.save_view(OrderView(id="v1", status="shipped"))
    cache.down = True

    await cached.projection_invalidator({"order_views": OrderView})({"order_views": {"v1"}})
    (during,) = await (await cached.fetch(OrderView, ["v1"]))
    cache.down = False
    clock.now += 5
    (after,) = await (await cached.fetch(OrderView, ["v1"]))

    assert (during.status, after.status) == ("shipped", "shipped")
    assert cached._reads.pending_invalidations == 0
