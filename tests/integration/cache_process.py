"""One application process with its own caching dispatcher, driven over stdin/stdout.

Used by the two-process cache tests: ``python cache_process.py MONGO_URI DB REDIS_URL NS``,
then one JSON command per line; each gets one JSON answer line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from cqrs_mongo import AggregateRoot, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWorkFactory, create_client


class Ticket(AggregateRoot[str]):
    status: str = "open"


class TicketRepository(MongoRepository[Ticket, str]):
    entity_type = Ticket
    collection = "tickets"


async def main(mongo_uri: str, database: str, redis_url: str, namespace: str) -> None:
    client = create_client(mongo_uri)
    registry = PersistenceRegistry()
    registry.register_operation(Ticket, TicketRepository)
    registry.register_retrieval(Ticket, TicketRepository)
    inner = PersistenceDispatcher(
        uow_factories={"default": MongoUnitOfWorkFactory(client, database)}, registry=registry
    )
    service = RedisCacheService.from_url(redis_url, socket_timeout=0.2, socket_connect_timeout=0.2)
    cached = CachingPersistenceDispatcher(
        inner=inner,
        cache_service=service,
        default_ttl=60,
        namespace=namespace,
        cache_timeout=0.5,
        breaker_cooldown=0.2,
    )
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        command: dict[str, Any] = json.loads(line)
        op = command["op"]
        answer: dict[str, Any] = {}
        if op == "seed":
            await cached.apply(Ticket(id=command["id"]))
        elif op == "set":
            (ticket,) = await inner.fetch_domain(Ticket, [command["id"]])
            ticket.status = command["status"]
            await cached.apply(ticket)
        elif op == "read":
            (ticket,) = await cached.fetch_domain(Ticket, [command["id"]])
            answer["status"] = ticket.status
        elif op == "settle":  # wait for the background retries to pay what the outage owes
            deadline = time.monotonic() + command["seconds"]
            while not cached.settled and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            answer["settled"] = cached.settled
            answer["pending"] = cached._reads.pending_invalidations
        answer["stats"] = {"hits": cached.stats.hits, "failures": cached.stats.failures}
        print(json.dumps(answer), flush=True)
    await cached.aclose()
    await service.aclose()
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
