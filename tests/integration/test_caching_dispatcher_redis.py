"""CachingPersistenceDispatcher on real Redis over MongoDB (embedded): costs, races, faults."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
import pytest_asyncio
from pydantic import BaseModel
from redis.asyncio import Redis

from cqrs_mongo import AggregateRoot, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import ICacheService, RedisCacheService
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.mongo import MongoQueryPersistence, MongoRepository, MongoUnitOfWorkFactory
from cqrs_mongo.testing import CommandCounter

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"


class Account(AggregateRoot[str]):
    owner: str
    balance: int = 0


class AccountView(BaseModel):
    id: str
    owner: str


class Gate:
    """Holds the next database read after it has read, until released."""

    def __init__(self) -> None:
        self.hold = False
        self.read_done = asyncio.Event()
        self.release = asyncio.Event()

    async def after_read(self) -> None:
        if self.hold:
            self.hold = False
            self.read_done.set()
            await self.release.wait()


class AccountRepository(MongoRepository[Account, str]):
    entity_type = Account
    collection = "accounts"

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate

    async def retrieve(self, ids: Sequence[str], uow: Any) -> list[Account]:
        found = await super().retrieve(ids, uow)
        await self.gate.after_read()
        return found


class AccountViews(MongoQueryPersistence[AccountView, str]):
    dto_type = AccountView
    collection = "account_views"

    def __init__(self, gate: Gate) -> None:
        super().__init__()


class CountingRedis(Redis):
    """Records the name of every command the client sends (pipelines as one entry)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: list[str] = []
        self.answered: list[str] = []
        self._answer = asyncio.Event()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]).upper())
        reply = await super().execute_command(*args, **options)
        self.answered.append(str(args[0]).upper())
        self._answer.set()
        return reply

    async def answers(self, command: str, count: int) -> None:
        """Wait until ``count`` replies to ``command`` have come back."""
        while self.answered.count(command) < count:
            self._answer.clear()
            await self._answer.wait()

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        self.commands.append("PIPELINE")
        return super().pipeline(transaction, shard_hint)


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
def namespace() -> str:
    return f"test-disp-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def cleanup(redis_client: CountingRedis, namespace: str) -> AsyncIterator[None]:
    yield
    keys = [key async for key in redis_client.scan_iter(match=f"{namespace}:*")]
    if keys:
        await redis_client.delete(*keys)


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name)


@pytest.fixture
def inner(factory: MongoUnitOfWorkFactory, gate: Gate) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Account, AccountRepository)
    registry.register_retrieval(Account, AccountRepository)
    registry.register_query(AccountView, AccountViews)
    return PersistenceDispatcher(
        uow_factories={"default": factory}, registry=registry, handler_factory=lambda c: c(gate)
    )


def make_cached(
    inner: PersistenceDispatcher, service: ICacheService, namespace: str, **options: Any
) -> CachingPersistenceDispatcher:
    return CachingPersistenceDispatcher(
        inner=inner, cache_service=service, default_ttl=60, namespace=namespace, **options
    )


@pytest.fixture
def cached(
    inner: PersistenceDispatcher, redis_client: CountingRedis, namespace: str, cleanup: None
) -> CachingPersistenceDispatcher:
    return make_cached(inner, RedisCacheService(redis_client), namespace)


async def seed(cached: CachingPersistenceDispatcher, *ids: str) -> None:
    for account_id in ids:
        await cached.apply(Account(id=account_id, owner=f"owner-{account_id}"))


# --- cost of a hit -----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 25, 200])
async def test_a_hit_is_one_mget_and_no_database_command(
    cached: CachingPersistenceDispatcher,
    redis_client: CountingRedis,
    command_counter: CommandCounter,
    count: int,
) -> None:
    ids = [f"acc-{i}" for i in range(count)]
    await seed(cached, *ids)
    await cached.fetch_domain(Account, [*ids, "missing"])
    asked = random.Random(count).sample(ids, len(ids))
    asked.insert(len(asked) // 2, "missing")

    redis_client.commands.clear()
    with command_counter.measure() as database:
        found = await cached.fetch_domain(Account, asked)

    assert [a.id for a in found] == [i for i in asked if i != "missing"]
    assert all(a.version == 1 for a in found)
    assert redis_client.commands == ["MGET"]
    assert sum(database.values()) == 0


async def test_read_models_by_ids_hit_the_same_way(
    cached: CachingPersistenceDispatcher,
    redis_client: CountingRedis,
    command_counter: CommandCounter,
    mongo_db: Any,
) -> None:
    await mongo_db["account_views"].insert_many(
        [{"_id": f"v{i}", "owner": f"o{i}"} for i in range(10)]
    )
    await (await cached.fetch(AccountView, [*(f"v{i}" for i in range(10)), "nope"]))

    redis_client.commands.clear()
    with command_counter.measure() as database:
        views = await (await cached.fetch(AccountView, ["v9", "nope", "v2"]))

    assert [(v.id, v.owner) for v in views] == [("v9", "o9"), ("v2", "o2")]
    assert redis_client.commands == ["MGET"]
    assert sum(database.values()) == 0


# --- consistency -------------------------------------------------------------------------------


async def test_an_old_value_stored_after_a_commit_is_never_served(
    cached: CachingPersistenceDispatcher, inner: PersistenceDispatcher, gate: Gate
) -> None:
    await seed(cached, "a1")
    gate.hold = True
    reader = asyncio.create_task(cached.fetch_domain(Account, ["a1"]))
    await gate.read_done.wait()  # the reader holds balance 0, read before the write

    (account,) = await inner.fetch_domain(Account, ["a1"])
    account.balance = 100
    await cached.apply(account)
    gate.release.set()
    (old,) = await reader

    assert old.balance == 0
    for _ in range(2):
        (now,) = await cached.fetch_domain(Account, ["a1"])
        assert (now.balance, now.version) == (100, 2)


async def test_a_rolled_back_transaction_leaves_the_cache_as_it_was(
    cached: CachingPersistenceDispatcher,
    factory: MongoUnitOfWorkFactory,
    command_counter: CommandCounter,
) -> None:
    await seed(cached, "a1")
    await cached.fetch_domain(Account, ["a1"])

    with pytest.raises(LookupError):
        async with factory() as uow:
            (account,) = await cached.fetch_domain(Account, ["a1"], uow=uow)
            account.balance = -5
            await cached.apply(account, uow=uow)
            (mine,) = await cached.fetch_domain(Account, ["a1"], uow=uow)
            assert mine.balance == -5
            raise LookupError("abort")

    with command_counter.measure() as database:
        (after,) = await cached.fetch_domain(Account, ["a1"])
    assert (after.balance, after.version) == (0, 1)
    assert sum(database.values()) == 0
    assert cached.stats.invalidations == 1  # the seeding write only


async def test_a_committed_transaction_invalidates_after_its_commit(
    cached: CachingPersistenceDispatcher, factory: MongoUnitOfWorkFactory
) -> None:
    await seed(cached, "a1")
    await cached.fetch_domain(Account, ["a1"])

    async with factory() as uow:
        (account,) = await cached.fetch_domain(Account, ["a1"], uow=uow)
        account.balance = 7
        await cached.apply(account, uow=uow)

    (after,) = await cached.fetch_domain(Account, ["a1"])
    assert (after.balance, after.version) == (7, 2)


async def test_concurrent_misses_cost_one_database_query(
    cached: CachingPersistenceDispatcher,
    gate: Gate,
    command_counter: CommandCounter,
    redis_client: CountingRedis,
) -> None:
    await seed(cached, "a1")
    gate.hold = True
    with command_counter.measure() as database:
        asked = redis_client.answered.count("MGET")
        readers = [asyncio.create_task(cached.fetch_domain(Account, ["a1"])) for _ in range(20)]
        await gate.read_done.wait()
        # Every reader has its miss before the first read is let go: on a loaded machine a
        # reader whose cache lookup is still in flight would otherwise come after the flight
        # landed and rightly read for itself.
        async with asyncio.timeout(10):
            await redis_client.answers("MGET", asked + 20)
        for _ in range(20):  # from the reply to the claim of the flight: a few loop turns
            await asyncio.sleep(0)
        gate.release.set()
        results = await asyncio.gather(*readers)

    assert [[a.id for a in r] for r in results] == [["a1"]] * 20
    assert database["find"] == 1


# --- faults ------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def exercise(cached: CachingPersistenceDispatcher, account_id: str) -> None:
    """One of each call, each asserted to finish within a generous bound."""
    calls = [
        lambda: cached.apply(Account(id=account_id, owner="o")),
        lambda: cached.fetch_domain(Account, [account_id, "missing"]),
        lambda: cached.fetch_domain(Account, [account_id]),
    ]
    for call in calls:
        started = time.monotonic()
        await call()
        assert time.monotonic() - started < 2.0


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cqrs_mongo.cache"]


async def test_with_redis_on_a_closed_port_every_call_succeeds_and_one_line_is_logged(
    inner: PersistenceDispatcher, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "cqrs_mongo.cache")
    service = RedisCacheService.from_url(
        f"redis://127.0.0.1:{closed_port()}/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    cached = make_cached(inner, service, namespace, breaker_cooldown=0.05)
    try:
        for n in range(3):
            await exercise(cached, f"a{n}")
            await asyncio.sleep(0.06)  # past the cooldown: each round probes Redis again
        (found,) = await cached.fetch_domain(Account, ["a2"])
    finally:
        await service.aclose()

    assert found.id == "a2"
    assert len(outage_lines(caplog)) == 1
    assert cached.stats.outages == 1
    assert cached.stats.failures >= 3


async def test_with_redis_that_never_answers_every_call_succeeds_within_the_bound(
    inner: PersistenceDispatcher, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def accept_and_ignore(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(accept_and_ignore, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    service = RedisCacheService.from_url(
        f"redis://127.0.0.1:{port}/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    cached = make_cached(inner, service, namespace, cache_timeout=0.5)
    try:
        await exercise(cached, "a1")
        await exercise(cached, "a2")
    finally:
        await service.aclose()
        server.close()
        await server.wait_closed()

    assert len(outage_lines(caplog)) == 1
    assert cached.stats.outages == 1


class Repointable:
    """An ICacheService whose backend can be swapped, as when Redis comes back."""

    def __init__(self, target: ICacheService) -> None:
        self.target = target

    async def get(self, key: str) -> bytes | None:
        return await self.target.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self.target.get_many(keys)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self.target.set(key, value, ttl)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        await self.target.set_many(items, ttl)

    async def get_or_set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> list[bytes]:
        return await self.target.get_or_set_many(items, ttl)

    async def delete(self, key: str) -> None:
        await self.target.delete(key)

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self.target.delete_many(keys)


async def test_the_cache_is_used_again_when_redis_returns(
    inner: PersistenceDispatcher,
    redis_client: CountingRedis,
    namespace: str,
    cleanup: None,
    command_counter: CommandCounter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    live = RedisCacheService(redis_client)
    dead = RedisCacheService.from_url(
        f"redis://127.0.0.1:{closed_port()}/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    service = Repointable(live)
    cached = make_cached(inner, service, namespace, breaker_cooldown=0.05)
    await seed(cached, "a1")
    await cached.fetch_domain(Account, ["a1"])  # cached: balance 0

    service.target = dead
    (account,) = await inner.fetch_domain(Account, ["a1"])
    account.balance = 50
    await cached.apply(account)  # the invalidation cannot reach Redis
    service.target = live
    await asyncio.sleep(0.06)

    (first,) = await cached.fetch_domain(Account, ["a1"])
    with command_counter.measure() as database:
        (second,) = await cached.fetch_domain(Account, ["a1"])
    await dead.aclose()

    assert (first.balance, second.balance) == (50, 50)
    assert sum(database.values()) == 0
    assert len(outage_lines(caplog)) == 2  # down once, back once
