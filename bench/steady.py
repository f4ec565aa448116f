"""Projection steady state: events applied per second from the change stream, 5 writers.

Usage::

    python -m bench.steady                    # 5 writers x 200 one-event appends, batch 100
    python -m bench.steady --writers 5 --events 400

Each side runs against the same fresh events collection while ``--writers`` tasks append
one-event units as fast as the server takes them (each writer owns a stream). The cqrs-mongo
side is a started ``MongoProjectionWorker`` (change stream, exactly-once positions, fenced
checkpoint); the raw side is what a competent engineer writes by hand: a change stream of
inserts, up to a batch of events (or what arrived within ``max_await_ms``), then one
transaction with a ``bulk_write`` of upserts and the resume token as the checkpoint. Measured:
events applied per second from the first append until the read model holds every event, and
the applier's commands (its own client) per event. Both read models are checked to be equal.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from bench.catchup import BalanceProjection, Deposited, raw_commit_batch
from bench.machine import server_uri
from cqrs_mongo.mongo import (
    MongoEventStore,
    MongoProjectionWorker,
    MongoUnitOfWork,
    MongoUnitOfWorkFactory,
    create_client,
)
from cqrs_mongo.testing import CommandCounter

BATCH = 100
MAX_AWAIT_MS = 100


async def write(factory: MongoUnitOfWorkFactory, writer: int, events: int) -> None:
    for version in range(events):

        async def append(uow: MongoUnitOfWork, version: int = version) -> None:
            await MongoEventStore(uow.database).append(
                f"w{writer}", [Deposited(amount=version % 7 + 1)], version, stream_type="W", uow=uow
            )

        await factory.run(append)


async def raw_apply(client: Any, database: str, target: str, stop: asyncio.Event) -> None:
    """The hand-written change-stream loop."""
    db = client[database]
    pipeline = [{"$match": {"operationType": "insert"}}]
    async with await db["events"].watch(pipeline, max_await_time_ms=MAX_AWAIT_MS) as stream:
        while not stop.is_set():
            changes = []
            while len(changes) < BATCH:
                change = await stream.try_next()
                if change is None:
                    break
                changes.append(change["fullDocument"])
            if not changes:
                continue
            amounts = [(e["stream_id"], e["payload"]["amount"]) for e in changes]
            await raw_commit_batch(client, db, target, amounts, {"token": stream.resume_token})


async def applied(database: Any, target: str) -> int:
    rows = await database[target].aggregate([{"$group": {"_id": None, "n": {"$sum": "$events"}}}])
    found = await rows.to_list()
    return int(found[0]["n"]) if found else 0


async def run_side(
    side: str, uri: str, writers: int, per_writer: int
) -> tuple[float, int, dict[Any, Any], float]:
    database = f"bench_steady_{uuid.uuid4().hex[:8]}"
    counter = CommandCounter()
    applier = create_client(uri, event_listeners=[counter])
    writer_client = create_client(uri)
    factory = MongoUnitOfWorkFactory(writer_client, database, retry_budget_seconds=120)
    async with factory() as uow:
        await MongoEventStore(uow.database).ensure_indexes()
    target = f"{side}_balances"
    stop = asyncio.Event()
    worker = None
    task = None
    if side == "cqrs-mongo":
        projection = BalanceProjection()
        projection.name = target
        worker = MongoProjectionWorker(
            projection,
            MongoUnitOfWorkFactory(applier, database, retry_budget_seconds=120),
            batch_size=BATCH,
            max_await_ms=MAX_AWAIT_MS,
        )
        await worker.run_until_caught_up()
        await worker.start()
    else:
        task = asyncio.create_task(raw_apply(applier, database, target, stop))
    await asyncio.sleep(0.5)  # the change stream is open before the first append
    counter.reset()
    total = writers * per_writer
    started = time.perf_counter()
    await asyncio.gather(*(write(factory, w, per_writer) for w in range(writers)))
    written = time.perf_counter()
    db = writer_client[database]
    while await applied(db, target) < total:  # noqa: ASYNC110 - polling the server
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    tail = time.perf_counter() - written
    commands = sum(counter.counts.values())
    folded = {d["_id"]: (d["total"], d["events"]) async for d in db[target].find({})}
    if worker is not None:
        await worker.stop()
    stop.set()
    if task is not None:
        await task
    await applier.close()
    await writer_client.close()
    return total / elapsed, commands, folded, tail


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steady", description=__doc__)
    parser.add_argument("--writers", type=int, default=5)
    parser.add_argument("--events", type=int, default=200, help="appends per writer")
    args = parser.parse_args(argv)
    async with server_uri() as (uri, _):
        results = {}
        for side in ("raw", "cqrs-mongo", "raw", "cqrs-mongo"):
            results.setdefault(side, []).append(
                await run_side(side, uri, args.writers, args.events)
            )
        total = args.writers * args.events
        if results["raw"][0][2] != results["cqrs-mongo"][0][2]:
            raise SystemExit("the two sides folded different documents")
        print(
            f"{'side':<12} {'events':>6} {'ev/s (best of 2)':>17} {'applier cmds/event':>19}"
            f" {'lag after last write s':>23}"
        )
        for side, runs in results.items():
            rate, commands, _, tail = max(runs, key=lambda run: run[0])
            print(f"{side:<12} {total:>6} {rate:>17.0f} {commands / total:>19.2f} {tail:>23.2f}")
        raw = max(r[0] for r in results["raw"])
        ours = max(r[0] for r in results["cqrs-mongo"])
        print(
            f"steady state, {args.writers} writers: cqrs-mongo applies {ours / raw:.2f}x raw's rate"
        )


if __name__ == "__main__":
    asyncio.run(main())
