"""Catch-up throughput of the projection worker: events per second through run_until_caught_up.

Run: ``python -m bench.projection_catchup [--events 5000] [--batch 100] [--streams 500]``.
The embedded server runs as a child process (so its CPU is not the client's); ``MONGODB_URI``
points the run at another server instead. Events are appended through the event store, then one
worker catches up from zero, timed with ``time.perf_counter``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.eventsourcing.event_store import MongoEventStore
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.projections import Projection, ProjectionContext
from cqrs_mongo.testing.embedded_server import EmbeddedMongoServer


class Credited(DomainEvent):
    amount: int


class Totals(Projection):
    name = "bench_totals"

    async def on_Credited(self, event: Credited, ctx: ProjectionContext) -> None:
        await ctx.inc(ctx.stream_id, total=event.amount, events=1)
        await ctx.inc("everything", total=event.amount, events=1)


async def seed(factory: MongoUnitOfWorkFactory, events: int, streams: int) -> None:
    per_stream = max(1, events // streams)

    async def append(uow: MongoUnitOfWork, stream: str) -> None:
        store = MongoEventStore(uow.database)
        credits = [Credited(amount=n % 7 + 1) for n in range(per_stream)]
        await store.append(stream, credits, 0, stream_type="Account", uow=uow)

    await MongoEventStore(factory.database).ensure_indexes()
    for n in range(streams):
        await factory.run(append, f"acct-{n}")


async def measure(uri: str, events: int, batch: int, streams: int) -> None:
    client = driver.create_client(uri)
    try:
        name = f"bench_catchup_{os.getpid()}"
        factory = MongoUnitOfWorkFactory(client, name)
        await seed(factory, events, streams)
        worker = MongoProjectionWorker(Totals(), factory, batch_size=batch, max_await_ms=20)
        started = time.perf_counter()
        applied = await worker.run_until_caught_up()
        elapsed = time.perf_counter() - started
        await worker.feed.close()
        print(
            f"catch-up: {applied} events, batch {batch}, {elapsed:.2f} s, "
            f"{applied / elapsed:.0f} events/s"
        )
        await client.drop_database(name)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--streams", type=int, default=500)
    args = parser.parse_args()
    uri = os.environ.get("MONGODB_URI")
    if uri:
        asyncio.run(measure(uri, args.events, args.batch, args.streams))
        return
    with EmbeddedMongoServer(in_process=False) as server:
        asyncio.run(measure(server.uri, args.events, args.batch, args.streams))


if __name__ == "__main__":
    main()
