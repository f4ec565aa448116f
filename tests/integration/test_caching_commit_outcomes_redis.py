"""The cache after commits whose outcome the caller does not learn: cancelled, unknown, failed.

Every outcome that may have committed must invalidate before the error reaches the caller, and a
commit still in flight when the caller gave up must not leave an old value cached once it lands.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from cqrs_mongo import AggregateRoot, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWorkFactory
from cqrs_mongo.testing import fail_command

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"
BLOCK_MS = 3000


class Ticket(AggregateRoot[str]):
    status: str = "open"


class TicketRepository(MongoRepository[Ticket, str]):
    entity_type = Ticket
    collection = "tickets"


@pytest.fixture
def namespace() -> str:
    return f"test-outcomes-{uuid.uuid4().hex[:12]}"


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
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, retry_budget_seconds=0.5)


@pytest.fixture
def inner(factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Ticket, TicketRepository)
    registry.register_retrieval(Ticket, TicketRepository)
    return PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)


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


async def cached_open_ticket(
    cached: CachingPersistenceDispatcher, inner: PersistenceDispatcher
) -> Ticket:
    """Ticket t1 stored and cached as "open"; returns a copy changed to "closed"."""
    await cached.apply(Ticket(id="t1"))
    (seen,) = await cached.fetch_domain(Ticket, ["t1"])
    assert seen.status == "open"
    (ticket,) = await inner.fetch_domain(Ticket, ["t1"])
    ticket.status = "closed"
    return ticket


async def eventually(check: Callable[[], Any], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "the commit never landed"
        await asyncio.sleep(0.05)


def stored_status(mongo_db: Any, expected: str) -> Callable[[], Any]:
    async def check() -> bool:
        doc = await mongo_db["tickets"].find_one({"_id": "t1"})
        return doc is not None and doc["status"] == expected

    return check


async def read_status(cached: CachingPersistenceDispatcher) -> str:
    (ticket,) = await cached.fetch_domain(Ticket, ["t1"])
    return ticket.status


@pytest.mark.parametrize("mode", ["own-unit", "caller-unit", "caller-transaction"])
async def test_a_cancelled_apply_whose_commit_lands_later_leaves_no_stale_entry(
    cached: CachingPersistenceDispatcher,
    inner: PersistenceDispatcher,
    factory: MongoUnitOfWorkFactory,
    mongo_client: Any,
    mongo_db: Any,
    mode: str,
) -> None:
    ticket = await cached_open_ticket(cached, inner)

    async def apply() -> None:
        if mode == "own-unit":
            await cached.apply(ticket)
            return
        async with factory() as uow:
            if mode == "caller-transaction":  # a second write: the unit commits a transaction
                await cached.apply(Ticket(id=f"other-{uuid.uuid4().hex[:8]}"), uow=uow)
            await cached.apply(ticket, uow=uow)

    # The commit is held on the server for 3 s; so is the unit's fence (the find that would
    # stop the commit from landing later), which gives up after 2 s: the commit lands late.
    # A unit whose only operation is one update sends it alone, in place of a commit: then
    # the update is what is held.
    held = "commitTransaction" if mode == "caller-transaction" else "update"
    async with fail_command(mongo_client, [held, "find"], times=2, block_ms=BLOCK_MS):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(apply(), 0.3)
        # Readers now see "open", correctly, and must not leave it in the cache for after
        # the commit lands.
        during = [await read_status(cached) for _ in range(3)]
        landed_early = time.monotonic() - started > BLOCK_MS / 1000
        await eventually(stored_status(mongo_db, "closed"))

    assert not landed_early  # the reads above really came before the commit landed
    assert during == ["open"] * 3
    assert [await read_status(cached) for _ in range(3)] == ["closed"] * 3


@pytest.mark.parametrize("in_unit", [False, True], ids=["own-unit", "caller-unit"])
@pytest.mark.parametrize(
    "failure",
    [
        {"write_concern_error": {"code": 100, "errmsg": "unsatisfiable (unlabelled)"}},
        # Labelled UnknownTransactionCommitResult by the driver: retried until the budget ends.
        {"write_concern_error": {"code": 64, "errmsg": "waiting for replication timed out"}},
    ],
    ids=["wce-100-unlabelled", "wce-64-unknown-result"],
)
async def test_a_commit_reported_as_failed_or_unknown_invalidates_before_the_error(
    cached: CachingPersistenceDispatcher,
    inner: PersistenceDispatcher,
    factory: MongoUnitOfWorkFactory,
    mongo_client: Any,
    mongo_db: Any,
    failure: dict[str, Any],
    in_unit: bool,
) -> None:
    ticket = await cached_open_ticket(cached, inner)
    seen_when_raised: list[str] = []

    async def apply() -> None:
        if in_unit:
            async with factory() as uow:
                await cached.apply(ticket, uow=uow)
        else:
            await cached.apply(ticket)

    async with fail_command(mongo_client, ["commitTransaction"], times=1000, **failure):
        try:
            await apply()
        except Exception:
            # What any reader gets the moment the caller learns of the failure.
            seen_when_raised.append(await read_status(cached))
    committed = await stored_status(mongo_db, "closed")()

    if seen_when_raised:
        assert seen_when_raised == ["closed" if committed else "open"]
    assert await read_status(cached) == ("closed" if committed else "open")


async def test_a_storm_of_cancelled_applies_leaves_no_stale_entry(
    cached: CachingPersistenceDispatcher,
    inner: PersistenceDispatcher,
    mongo_client: Any,
    mongo_db: Any,
) -> None:
    count = 12
    ids = [f"s{i}" for i in range(count)]
    for ticket_id in ids:
        await cached.apply(Ticket(id=ticket_id))
    assert len(await cached.fetch_domain(Ticket, ids)) == count
    changed = await inner.fetch_domain(Ticket, ids)
    for ticket in changed:
        ticket.status = "closed"

    # As in the single case: each commit (here each lone update) and each unit's fence are
    # held, the fences give up.
    async with fail_command(
        mongo_client,
        ["commitTransaction", "update", "find"],
        times=2 * count,
        block_ms=BLOCK_MS,
    ):
        outcomes = await asyncio.gather(
            *(asyncio.wait_for(cached.apply(t), 0.3) for t in changed), return_exceptions=True
        )
        during = await cached.fetch_domain(Ticket, ids)  # before the commits land
        landed = await settled_count(mongo_db, {"status": "closed"})

    # Most callers give up; on a loaded machine a few get another error or their answer.
    assert sum(isinstance(o, TimeoutError) for o in outcomes) >= count // 2
    assert landed > 0  # some abandoned commits landed late, or the test proves nothing
    assert len(during) == count
    stored = {d["_id"]: d["status"] async for d in mongo_db["tickets"].find({"_id": {"$in": ids}})}
    through_cache = {t.id: t.status for t in await cached.fetch_domain(Ticket, ids)}
    assert through_cache == stored


async def settled_count(mongo_db: Any, query: dict[str, Any]) -> int:
    """The count of ``query`` once it has not changed for 1.5 s (within 20 s)."""
    deadline = time.monotonic() + 20
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = await mongo_db["tickets"].count_documents(query)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 1.5:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"the stored state kept changing: {last} documents match {query}")
