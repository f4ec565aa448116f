"""Projection catch-up: ``MongoProjectionWorker`` against a hand-written raw-pymongo loop.

Usage::

    python -m bench.catchup                      # 5,000 events, batch 100 and 500, 3 rounds
    python -m bench.catchup --events 2000 --batch 100 --rounds 5

All sides fold the same pre-written events (``--streams`` accounts, ``Deposited`` events written
through the package's event store) into one read-model document per account, and keep their
position in a checkpoint written in each batch's transaction. The raw loop is what a competent
engineer writes by hand: one cursor over the events collection sorted by its unique
``(stream_id, version)`` index, and per batch one transaction with a ``bulk_write`` of upserts
and the checkpoint update; ``raw+validate`` is the same loop turning each stored event into
its ``DomainEvent`` class with ``model_validate`` (the CPU floor for typed events). The outputs
are checked equal. The embedded server runs
as a child process, so the client CPU measured is the client's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, UpdateOne

from bench.machine import server_uri
from bench.raw_side import TRANSACTION_OPTIONS
from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.mongo import (
    MongoEventStore,
    MongoProjectionWorker,
    MongoUnitOfWorkFactory,
    create_client,
)
from cqrs_mongo.projections import Projection, ProjectionContext
from cqrs_mongo.testing import CommandCounter

SIDES = ["raw", "raw+validate", "cqrs-mongo"]


class Deposited(DomainEvent):
    amount: int


class BalanceProjection(Projection):
    name = "bench_balances"

    async def on_Deposited(self, event: Deposited, ctx: ProjectionContext) -> None:
        await ctx.upsert(ctx.stream_id, {"$inc": {"total": event.amount, "events": 1}})


@dataclass(frozen=True)
class Run:
    side: str
    batch: int
    events: int
    wall: float
    cpu: float
    commands: dict[str, int]

    @property
    def total_commands(self) -> int:
        return sum(self.commands.values())


async def write_events(factory: MongoUnitOfWorkFactory, streams: int, per_stream: int) -> None:
    async with factory() as uow:
        await MongoEventStore(uow.database).ensure_indexes()
    for n in range(streams):
        async with factory() as uow:
            events = [Deposited(amount=(n * 7 + k) % 13 + 1) for k in range(per_stream)]
            await MongoEventStore(uow.database).append(
                f"acct-{n:05d}", events, 0, stream_type="Account", uow=uow
            )


async def raw_commit_batch(
    client: Any,
    db: Any,
    target: str,
    amounts: Sequence[tuple[Any, int]],
    checkpoint: dict[str, Any],
) -> None:
    """One hand-written batch: the upserts and the checkpoint in one transaction."""
    ops = [
        UpdateOne({"_id": stream_id}, {"$inc": {"total": amount, "events": 1}}, upsert=True)
        for stream_id, amount in amounts
    ]
    async with client.start_session() as session:
        await session.start_transaction(**TRANSACTION_OPTIONS)
        await db[target].bulk_write(ops, ordered=True, session=session)
        await db["raw_checkpoints"].update_one(
            {"_id": target}, {"$set": checkpoint}, upsert=True, session=session
        )
        await session.commit_transaction()


async def raw_catch_up(
    client: Any, database: str, batch: int, target: str, *, validate: bool = False
) -> int:
    """The hand-written loop: sorted cursor, one transaction per batch, checkpoint inside it;
    with ``validate`` each payload also becomes a ``Deposited`` (``model_validate``), the
    CPU floor for a loop that hands its handlers typed events."""
    db = client[database]
    applied = 0
    cursor = (
        db["events"]
        .find({}, None if validate else {"stream_id": 1, "version": 1, "payload": 1})
        .sort([("stream_id", ASCENDING), ("version", ASCENDING)])
        .batch_size(batch)
    )
    pending: list[dict[str, Any]] = []

    def amount(event: dict[str, Any]) -> int:
        if not validate:
            return int(event["payload"]["amount"])
        metadata = event["metadata"]
        typed = Deposited.model_validate(
            {
                **event["payload"],
                "event_id": event["_id"],
                "aggregate_id": event["stream_id"],
                "occurred_at": event["occurred_at"],
                "correlation_id": metadata["correlation_id"],
                "causation_id": metadata["causation_id"],
            }
        )
        return typed.amount

    async def flush() -> None:
        last = pending[-1]
        checkpoint = {"stream_id": last["stream_id"], "version": last["version"]}
        amounts = [(e["stream_id"], amount(e)) for e in pending]
        await raw_commit_batch(client, db, target, amounts, checkpoint)

    async for event in cursor:
        pending.append(event)
        if len(pending) == batch:
            await flush()
            applied += len(pending)
            pending.clear()
    if pending:
        await flush()
        applied += len(pending)
    return applied


async def measure_side(
    side: str, uri: str, database: str, batch: int, expected_events: int
) -> tuple[Run, dict[Any, Any]]:
    counter = CommandCounter()
    client = create_client(uri, event_listeners=[counter])
    try:
        target = f"{side}_{batch}_{uuid.uuid4().hex[:6]}"
        factory = MongoUnitOfWorkFactory(client, database, retry_budget_seconds=120)
        worker = None
        if side == "cqrs-mongo":
            projection = BalanceProjection()
            projection.name = target
            worker = MongoProjectionWorker(projection, factory, batch_size=batch)
            await worker.run_until_caught_up()  # warm-up: builds indexes, reads nothing twice
            await client[database][target].delete_many({})
            await client[database]["projection_checkpoints"].delete_many({})
            await client[database]["projection_positions"].delete_many({})
            worker = MongoProjectionWorker(projection, factory, batch_size=batch)
        counter.reset()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        if worker is not None:
            applied = await worker.run_until_caught_up()
        else:
            applied = await raw_catch_up(
                client, database, batch, target, validate=side == "raw+validate"
            )
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        commands = dict(counter.counts)
        if applied != expected_events:
            raise SystemExit(f"{side}: applied {applied} events, expected {expected_events}")
        folded = {
            doc["_id"]: (doc["total"], doc["events"])
            async for doc in client[database][target].find({})
        }
        return Run(side, batch, applied, wall, cpu, commands), folded
    finally:
        await client.close()


def median_run(runs: Sequence[Run]) -> Run:
    """The median wall time and the median CPU time of ``runs`` (commands of the last)."""
    walls = sorted(run.wall for run in runs)
    cpus = sorted(run.cpu for run in runs)
    last = runs[-1]
    return Run(
        last.side,
        last.batch,
        last.events,
        walls[len(runs) // 2],
        cpus[len(runs) // 2],
        last.commands,
    )


def print_table(runs: Sequence[Run]) -> None:
    print(f"{'side':<12} {'batch':>5} {'events':>6} {'wall s':>8} {'CPU s':>7} {'ev/s':>8} cmds")
    for run in runs:
        rate = run.events / run.wall if run.wall else 0.0
        print(
            f"{run.side:<12} {run.batch:>5} {run.events:>6} {run.wall:>8.2f} {run.cpu:>7.3f} "
            f"{rate:>8.0f} {run.total_commands} {run.commands}"
        )
    by_batch: dict[int, dict[str, Run]] = {}
    for run in runs:
        by_batch.setdefault(run.batch, {})[run.side] = run
    for batch, sides in sorted(by_batch.items()):
        raw, ours = sides["raw"], sides["cqrs-mongo"]
        floor = sides["raw+validate"]
        print(
            f"batch {batch}: wall {ours.wall / raw.wall:.2f}x, CPU {ours.cpu / raw.cpu:.2f}x "
            f"(raw+validate {ours.cpu / floor.cpu:.2f}x), "
            f"commands {ours.total_commands} vs {raw.total_commands} "
            f"({ours.total_commands / max(1, ours.events // batch):.1f} vs "
            f"{raw.total_commands / max(1, raw.events // batch):.1f} per batch)"
        )


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.catchup", description=__doc__)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--batch", type=int, action="append")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    args = parser.parse_args(argv)
    batches = args.batch or [100, 500]
    per_stream = max(1, args.events // args.streams)
    total = per_stream * args.streams
    async with server_uri() as (uri, _):
        database = f"bench_catchup_{uuid.uuid4().hex[:8]}"
        client = create_client(uri)
        await write_events(MongoUnitOfWorkFactory(client, database), args.streams, per_stream)
        await client.close()
        runs: list[Run] = []
        for batch in batches:
            rounds: dict[str, list[Run]] = {side: [] for side in SIDES}
            for n in range(args.rounds):
                order = SIDES[n % len(SIDES) :] + SIDES[: n % len(SIDES)]
                folds = []
                for side in order:
                    run, fold = await measure_side(side, uri, database, batch, total)
                    rounds[side].append(run)
                    folds.append(fold)
                if any(fold != folds[0] for fold in folds):
                    raise SystemExit(f"batch {batch}: the sides folded different documents")
            runs += [median_run(rounds[side]) for side in SIDES]
        print(f"medians of {args.rounds} interleaved rounds")
        print_table(runs)


if __name__ == "__main__":
    asyncio.run(main())
