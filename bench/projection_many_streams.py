"""One projection document touched by many streams: correctness, size and catch-up time.

Run: ``python -m bench.projection_many_streams [--streams 500000] [--batch 500]``. Events are
inserted straight into the events collection in bulk (one ``Visited`` per stream), then one
worker catches up from zero; the counter document's BSON size is printed (it must not depend on
the number of streams).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime

import bson

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory
from cqrs_mongo.projections import Projection, ProjectionContext
from cqrs_mongo.testing.embedded_server import EmbeddedMongoServer


class Visited(DomainEvent):
    pass


class Visits(Projection):
    name = "visits"

    async def on_Visited(self, event: Visited, ctx: ProjectionContext) -> None:
        await ctx.inc("all", visits=1)


async def measure(uri: str, streams: int, batch: int) -> None:
    client = driver.create_client(uri)
    name = f"bench_many_{os.getpid()}"
    try:
        db = driver.get_database(client, name)
        now = datetime.now(UTC)
        started = time.perf_counter()
        for offset in range(0, streams, 10_000):
            await db["events"].insert_many(
                [
                    {
                        "_id": uuid.uuid4(),
                        "stream_id": uuid.uuid4(),
                        "stream_type": "Visitor",
                        "version": 1,
                        "event_type": "Visited",
                        "schema_version": 1,
                        "payload": {},
                        "metadata": {"correlation_id": None, "causation_id": None},
                        "occurred_at": now,
                    }
                    for _ in range(min(10_000, streams - offset))
                ],
                ordered=False,
            )
        print(f"inserted {streams} events in {time.perf_counter() - started:.1f} s")
        worker = MongoProjectionWorker(
            Visits(), MongoUnitOfWorkFactory(client, name), batch_size=batch, max_await_ms=20
        )
        started = time.perf_counter()
        applied = await worker.run_until_caught_up()
        elapsed = time.perf_counter() - started
        await worker.feed.close()
        counter = await db["visits"].find_one({"_id": "all"})
        print(
            f"caught up {applied} events in {elapsed:.1f} s ({applied / elapsed:.0f}/s); "
            f"counter {counter}, {len(bson.encode(counter or {}))} bytes"
        )
        await client.drop_database(name)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    uri = os.environ.get("MONGODB_URI")
    if uri:
        asyncio.run(measure(uri, args.streams, args.batch))
        return
    with EmbeddedMongoServer(in_process=False) as server:
        asyncio.run(measure(server.uri, args.streams, args.batch))


if __name__ == "__main__":
    main()
