"""The caching dispatcher inside units of work, on real Redis over MongoDB (embedded).

A unit that has not written is answered from the cache and fills it on a miss; what it stores
must never be older than the last invalidation, although its transaction's snapshot may be.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from cqrs_mongo import AggregateRoot, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.errors import NonTransactionalRollbackWarning
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.testing import CommandCounter

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"


class Ticket(AggregateRoot[str]):
    status: str = "open"


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


class TicketRepository(MongoRepository[Ticket, str]):
    entity_type = Ticket
    collection = "tickets"

    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate

    async def retrieve(self, ids: Sequence[str], uow: Any) -> list[Ticket]:
        found = await super().retrieve(ids, uow)
        await self.gate.after_read()
        return found


@pytest.fixture
def namespace() -> str:
    return f"test-units-{uuid.uuid4().hex[:12]}"


@pytest_asyncio.fixture
async def redis_client(namespace: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # the suite must fail, not skip, without its server
        await client.aclose()
        raise RuntimeError(f"Redis at {REDIS_URL} is unreachable: {exc!r}.") from exc
    yield client
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name)


@pytest.fixture
def inner(factory: MongoUnitOfWorkFactory, gate: Gate) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Ticket, TicketRepository)
    registry.register_retrieval(Ticket, TicketRepository)
    return PersistenceDispatcher(
        uow_factories={"default": factory}, registry=registry, handler_factory=lambda c: c(gate)
    )


@pytest.fixture
def cached(
    inner: PersistenceDispatcher, redis_client: Redis, namespace: str
) -> CachingPersistenceDispatcher:
    return CachingPersistenceDispatcher(
        inner=inner,
        cache_service=RedisCacheService(redis_client),
        default_ttl=60,
        namespace=namespace,
    )


async def close_ticket(inner: PersistenceDispatcher, cached: CachingPersistenceDispatcher) -> None:
    (ticket,) = await inner.fetch_domain(Ticket, ["t1"])
    ticket.status = "closed"
    await cached.apply(ticket)  # commits, then invalidates


async def test_a_unit_that_has_not_written_fills_the_cache_and_later_units_hit_it(
    cached: CachingPersistenceDispatcher,
    factory: MongoUnitOfWorkFactory,
    command_counter: CommandCounter,
) -> None:
    await cached.apply(Ticket(id="t1"))

    async with factory() as uow:
        assert uow.in_transaction
        (first,) = await cached.fetch_domain(Ticket, ["t1"], uow=uow)
    async with factory() as uow:
        with command_counter.measure() as database:
            (second,) = await cached.fetch_domain(Ticket, ["t1"], uow=uow)

    assert (first.status, second.status, second.version) == ("open", "open", 1)
    assert database["find"] == 0
    assert cached.stats.hits == 1


async def test_a_unit_whose_snapshot_predates_an_invalidation_never_stores_its_old_value(
    cached: CachingPersistenceDispatcher,
    inner: PersistenceDispatcher,
    factory: MongoUnitOfWorkFactory,
    mongo_db: Any,
) -> None:
    await cached.apply(Ticket(id="t1"))
    await mongo_db["other"].insert_one({"_id": "x"})

    async with factory() as uow:
        # The unit's snapshot is taken by its first read, before the writer commits.
        assert await mongo_db["other"].find_one({"_id": "x"}, session=uow.session) is not None
        await close_ticket(inner, cached)
        (snapshot,) = await inner.fetch_domain(Ticket, ["t1"], uow=uow)
        assert snapshot.status == "open"  # what the unit's transaction sees

        (through_cache,) = await cached.fetch_domain(Ticket, ["t1"], uow=uow)

    assert through_cache.status == "closed"  # committed state, not the unit's old snapshot
    for _ in range(2):
        (now,) = await cached.fetch_domain(Ticket, ["t1"])
        assert (now.status, now.version) == ("closed", 2)


async def test_a_slow_unit_read_racing_a_commit_is_never_served_afterwards(
    cached: CachingPersistenceDispatcher,
    inner: PersistenceDispatcher,
    factory: MongoUnitOfWorkFactory,
    gate: Gate,
    command_counter: CommandCounter,
) -> None:
    await cached.apply(Ticket(id="t1"))

    async def read_in_unit() -> Ticket:
        async with factory() as uow:
            (ticket,) = await cached.fetch_domain(Ticket, ["t1"], uow=uow)
            return ticket

    gate.hold = True
    reader = asyncio.create_task(read_in_unit())
    await gate.read_done.wait()  # the reader holds status "open", read before the write
    await close_ticket(inner, cached)
    gate.release.set()
    assert (await reader).status == "open"

    (first,) = await cached.fetch_domain(Ticket, ["t1"])
    with command_counter.measure() as database:
        (second,) = await cached.fetch_domain(Ticket, ["t1"])
    assert (first.status, second.status) == ("closed", "closed")
    assert database["find"] == 0


async def test_a_unit_that_has_written_still_bypasses_the_cache(
    cached: CachingPersistenceDispatcher, factory: MongoUnitOfWorkFactory
) -> None:
    await cached.apply(Ticket(id="t1"))
    await cached.fetch_domain(Ticket, ["t1"])

    uow: MongoUnitOfWork
    async with factory() as uow:
        (ticket,) = await cached.fetch_domain(Ticket, ["t1"], uow=uow)
        ticket.status = "mine"
        await cached.apply(ticket, uow=uow)
        (mine,) = await cached.fetch_domain(Ticket, ["t1"], uow=uow)
        assert mine.status == "mine"
        (outside,) = await cached.fetch_domain(Ticket, ["t1"])
        assert outside.status == "open"
    (after,) = await cached.fetch_domain(Ticket, ["t1"])
    assert after.status == "mine"


async def test_a_unit_without_transactions_that_rolls_back_still_invalidates_what_it_wrote(
    mongomock_client: Any, namespace: str, redis_client: Redis
) -> None:
    # On mongomock (as on a standalone server) each write applies at once and survives the
    # unit's rollback, so the cache must not keep the value from before it.
    factory = MongoUnitOfWorkFactory(mongomock_client, "cache_rollback")
    registry = PersistenceRegistry()
    registry.register_operation(Ticket, TicketRepository)
    registry.register_retrieval(Ticket, TicketRepository)
    inner = PersistenceDispatcher(
        uow_factories={"default": factory}, registry=registry, handler_factory=lambda c: c(Gate())
    )
    cached = CachingPersistenceDispatcher(
        inner=inner, cache_service=RedisCacheService(redis_client), namespace=namespace
    )
    await cached.apply(Ticket(id="t1"))
    await cached.fetch_domain(Ticket, ["t1"])

    async def write_then_fail() -> None:
        async with factory() as uow:
            assert not uow.in_transaction
            (ticket,) = await cached.fetch_domain(Ticket, ["t1"], uow=uow)
            ticket.status = "written anyway"
            await cached.apply(ticket, uow=uow)
            raise LookupError("after the write")

    with pytest.raises(LookupError), pytest.warns(NonTransactionalRollbackWarning):
        await write_then_fail()

    (stored,) = await inner.fetch_domain(Ticket, ["t1"])
    (through_cache,) = await cached.fetch_domain(Ticket, ["t1"])
    assert through_cache.status == stored.status == "written anyway"
