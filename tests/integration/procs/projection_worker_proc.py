"""A projection worker process for the kill -9 tests: ``python this.py URI DB WORKER_ID``.

It runs until killed. Its handler is slow on purpose (batches take a while), so a kill lands
mid-batch, with the batch's transaction open on the server.
"""

from __future__ import annotations

import asyncio
import sys

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory
from cqrs_mongo.projections import Projection, ProjectionContext


class Deposited(DomainEvent):
    amount: int


class Balances(Projection):
    name = "balances"

    async def on_Deposited(self, event: Deposited, ctx: ProjectionContext) -> None:
        await asyncio.sleep(0.01)
        await ctx.upsert(
            ctx.stream_id,
            {"$inc": {"total": event.amount, "events": 1}, "$push": {"versions": ctx.version}},
        )
        await ctx.inc("all-accounts", total=event.amount, events=1)


async def main(uri: str, database: str, worker_id: str) -> None:
    client = driver.create_client(uri)
    factory = MongoUnitOfWorkFactory(client, database, retry_budget_seconds=120)
    worker = MongoProjectionWorker(
        Balances(), factory, batch_size=50, max_await_ms=50, worker_id=worker_id
    )
    await worker.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
