"""ICacheService behaviour, one suite run on the in-memory service and on Redis via fakeredis."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest

from cqrs_mongo.cache import ICacheService, InMemoryCacheService, RedisCacheService
from cqrs_mongo.errors import CacheError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CacheServiceSuite:
    """What every ICacheService must do; subclasses say how to build one."""

    def create_cache(self) -> ICacheService:
        raise NotImplementedError

    async def test_is_an_icacheservice(self) -> None:
        assert isinstance(self.create_cache(), ICacheService)

    async def test_get_returns_what_set_stored(self) -> None:
        cache = self.create_cache()
        await cache.set("k1", b"value", ttl=60)
        assert await cache.get("k1") == b"value"
        assert await cache.get("absent") is None

    async def test_get_many_answers_in_the_order_asked_with_none_for_absent(self) -> None:
        cache = self.create_cache()
        await cache.set_many({"a": b"1", "b": b"2", "c": b"3"}, ttl=60)
        assert await cache.get_many(["c", "x", "a", "b"]) == [b"3", None, b"1", b"2"]
        assert await cache.get_many([]) == []

    async def test_delete_and_delete_many_remove_keys(self) -> None:
        cache = self.create_cache()
        await cache.set_many({"a": b"1", "b": b"2", "c": b"3"})
        await cache.delete("a")
        await cache.delete_many(["b", "never-there"])
        assert await cache.get_many(["a", "b", "c"]) == [None, None, b"3"]

    async def test_get_or_set_many_keeps_existing_values_and_stores_the_rest(self) -> None:
        cache = self.create_cache()
        await cache.set("a", b"old")
        held = await cache.get_or_set_many({"a": b"new", "b": b"fresh"}, ttl=60)
        assert held == [b"old", b"fresh"]
        assert await cache.get_many(["a", "b"]) == [b"old", b"fresh"]

    async def test_set_replaces_a_value(self) -> None:
        cache = self.create_cache()
        await cache.set("a", b"1")
        await cache.set("a", b"2")
        assert await cache.get("a") == b"2"


class TestInMemoryCacheService(CacheServiceSuite):
    def create_cache(self) -> ICacheService:
        return InMemoryCacheService()

    async def test_entries_expire_after_their_ttl(self) -> None:
        clock = FakeClock()
        cache = InMemoryCacheService(clock=clock)
        await cache.set("short", b"1", ttl=10)
        await cache.set_many({"long": b"2"}, ttl=100)
        await cache.set("forever", b"3")
        clock.now += 11
        assert await cache.get_many(["short", "long", "forever"]) == [None, b"2", b"3"]
        assert len(cache) == 2

    async def test_refuses_values_that_are_not_bytes(self) -> None:
        with pytest.raises(TypeError, match="must be bytes"):
            await InMemoryCacheService().set("k", "text")  # type: ignore[arg-type]


class TestRedisCacheServiceOnFakeRedis(CacheServiceSuite):
    def create_cache(self) -> ICacheService:
        return RedisCacheService(fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()))

    async def test_writes_carry_the_ttl_in_milliseconds(self) -> None:
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        cache = RedisCacheService(client)
        await cache.set("one", b"1", ttl=30)
        await cache.set_many({"two": b"2"}, ttl=1.5)
        await cache.get_or_set_many({"three": b"3"}, ttl=45)
        await cache.set("none", b"4")
        assert 29_000 < await client.pttl("one") <= 30_000
        assert 1_000 < await client.pttl("two") <= 1_500
        assert 44_000 < await client.pttl("three") <= 45_000
        assert await client.pttl("none") == -1

    async def test_a_down_server_raises_cache_error(self) -> None:
        server = fakeredis.FakeServer()
        cache = RedisCacheService(fakeredis.FakeAsyncRedis(server=server))
        server.connected = False
        with pytest.raises(CacheError, match="MGET"):
            await cache.get_many(["a"])
        with pytest.raises(CacheError):
            await cache.set_many({"a": b"1"}, ttl=5)

    async def test_a_client_decoding_responses_still_yields_bytes(self) -> None:
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer(), decode_responses=True)
        cache = RedisCacheService(client)
        await cache.set("a", b"text")
        assert await cache.get_many(["a"]) == [b"text"]

    async def test_a_non_positive_ttl_is_refused(self) -> None:
        cache = self.create_cache()
        with pytest.raises(ValueError, match="ttl must be positive"):
            await cache.set("a", b"1", ttl=0)

    def test_from_url_configures_bounded_timeouts_and_one_retry(self) -> None:
        cache = RedisCacheService.from_url(
            "redis://127.0.0.1:1/0", socket_timeout=0.3, socket_connect_timeout=0.1
        )
        kwargs: dict[str, Any] = cache.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.3
        assert kwargs["socket_connect_timeout"] == 0.1
        assert kwargs["retry"].get_retries() == 1
