"""RedisCacheService on the real Redis server: round trips per call, TTLs, atomicity, faults."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.errors import CacheError

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"


class CountingRedis(Redis):
    """A client that records the name of every command (and every pipeline) it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: list[str] = []

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]).upper())
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        async def counted(raise_on_error: bool = True) -> Any:
            names = ",".join(str(args[0]).upper() for args, _ in pipe.command_stack)
            self.commands.append(f"PIPELINE[{names}]")
            return await execute(raise_on_error)

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe


@pytest_asyncio.fixture
async def redis_client() -> AsyncIterator[CountingRedis]:
    client = CountingRedis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # the suite must fail, not skip, without its server
        await client.aclose()
        raise RuntimeError(f"Redis at {REDIS_URL} is unreachable: {exc!r}.") from exc
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"test-cache-{uuid.uuid4().hex[:12]}:"


@pytest_asyncio.fixture
async def cache(redis_client: CountingRedis, prefix: str) -> AsyncIterator[RedisCacheService]:
    yield RedisCacheService(redis_client)
    keys = [key async for key in redis_client.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis_client.delete(*keys)


async def test_many_keys_are_read_with_one_mget_in_the_order_asked(
    cache: RedisCacheService, redis_client: CountingRedis, prefix: str
) -> None:
    await cache.set_many({f"{prefix}{i}": str(i).encode() for i in range(50)}, ttl=60)
    redis_client.commands.clear()

    asked = [f"{prefix}{i}" for i in (42, 7, 99, 0)]
    values = await cache.get_many(asked)

    assert values == [b"42", b"7", None, b"0"]
    assert redis_client.commands == ["MGET"]


async def test_many_writes_are_one_pipeline_with_the_ttl(
    cache: RedisCacheService, redis_client: CountingRedis, prefix: str
) -> None:
    redis_client.commands.clear()
    await cache.set_many({f"{prefix}a": b"1", f"{prefix}b": b"2"}, ttl=30)
    await cache.delete_many([f"{prefix}a", f"{prefix}zz"])

    assert redis_client.commands == ["PIPELINE[SET,SET]", "DEL"]
    assert 29_000 < await redis_client.pttl(f"{prefix}b") <= 30_000
    assert await redis_client.exists(f"{prefix}a") == 0


async def test_get_or_set_many_lets_exactly_one_concurrent_writer_win(
    cache: RedisCacheService, prefix: str
) -> None:
    key = f"{prefix}generation"
    answers = await asyncio.gather(
        *(cache.get_or_set_many({key: f"writer-{n}".encode()}, ttl=60) for n in range(20))
    )

    assert len({tuple(answer) for answer in answers}) == 1
    assert [await cache.get(key)] == answers[0]


async def test_a_closed_port_fails_fast_as_a_cache_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cache = RedisCacheService.from_url(f"redis://127.0.0.1:{port}/0", socket_connect_timeout=0.2)
    try:
        with pytest.raises(CacheError, match="MGET"):
            await asyncio.wait_for(cache.get_many(["k"]), timeout=5)
    finally:
        await cache.aclose()


async def test_a_server_that_never_answers_times_out_as_a_cache_error() -> None:
    async def accept_and_ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(accept_and_ignore, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cache = RedisCacheService.from_url(
        f"redis://127.0.0.1:{port}/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    try:
        with pytest.raises(CacheError):
            await asyncio.wait_for(cache.get_many(["k"]), timeout=5)
    finally:
        await cache.aclose()
        server.close()
        await server.wait_closed()


async def test_replies_are_parsed_by_hiredis_which_the_redis_extra_installs() -> None:
    cache = RedisCacheService.from_url(REDIS_URL)
    assert cache.uses_hiredis is True
    await cache.aclose()


async def test_a_service_from_url_sends_text_binary_and_numbers_as_redis_would(
    redis_client: CountingRedis, prefix: str
) -> None:
    # from_url packs commands with hiredis: what reaches the server must not change.
    items = {f"{prefix}clé-{i}": bytes([i, 0, 255]) + "ü|J".encode() for i in range(5)}
    cache = RedisCacheService.from_url(REDIS_URL)
    try:
        await cache.set_many(items, ttl=60)
        held = await cache.get_or_set_many({f"{prefix}clé-0": b"new", f"{prefix}n": b"1"}, 60)
        asked = [*items, f"{prefix}absent"]

        assert await cache.get_many(asked) == [*items.values(), None]
        assert await redis_client.mget(asked) == [*items.values(), None]
        assert held == [items[f"{prefix}clé-0"], b"1"]
        assert 59_000 < await redis_client.pttl(f"{prefix}n") <= 60_000
        assert await cache.client.incrby(f"{prefix}n", 2) == 3
        assert "maxmemory" in await cache.client.config_get("maxmemory")  # a two-word command
        with pytest.raises(DataError):
            await cache.client.set(f"{prefix}flag", True)  # type: ignore[arg-type]
    finally:
        await cache.client.delete(*items, f"{prefix}n")
        await cache.aclose()


async def test_a_service_with_another_encoding_writes_keys_in_that_encoding(
    redis_client: CountingRedis, prefix: str
) -> None:
    cache = RedisCacheService.from_url(REDIS_URL, encoding="latin-1")
    try:
        await cache.set(f"{prefix}clé", b"v", ttl=60)

        assert await redis_client.get(f"{prefix}clé".encode("latin-1")) == b"v"
        assert await cache.get_many([f"{prefix}clé"]) == [b"v"]
    finally:
        await cache.delete(f"{prefix}clé")
        await cache.aclose()


class NamingConnection(Connection):
    """A caller's connection class that packs commands its own way (here: noting their names)."""

    names: ClassVar[list[Any]] = []

    def pack_command(self, *args: Any) -> list[bytes]:
        self.names.append(args[0])
        return super().pack_command(*args)


async def test_a_caller_connection_class_that_packs_its_own_way_is_kept(prefix: str) -> None:
    cache = RedisCacheService.from_url(REDIS_URL, connection_class=NamingConnection)
    try:
        assert await cache.get_many([f"{prefix}absent"]) == [None]
        assert "MGET" in NamingConnection.names
    finally:
        await cache.aclose()
