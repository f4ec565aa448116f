"""Hot aggregates: many tasks load-modify-write one aggregate through ``factory.run``.

Usage::

    python -m bench.hot_stream            # 50 tasks x 10 cycles, event-sourced and state-stored
    python -m bench.hot_stream --tasks 20 --cycles 5 --only event_sourced

Every cycle loads the aggregate, adds one event (or one increment) and commits; conflicts re-run
the whole cycle inside the factory's retry budget. The table reports how many cycles landed,
how many handler attempts that took, the elapsed time, and the stored result (which must equal
the number of cycles that landed).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.machine import server_uri
from cqrs_mongo import AggregateRoot, DomainEvent, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.errors import TransactionError
from cqrs_mongo.mongo import (
    EventSourcedRepository,
    MongoRepository,
    MongoUnitOfWork,
    MongoUnitOfWorkFactory,
    create_client,
)


class Incremented(DomainEvent):
    by: int


class HotCounter(AggregateRoot[str]):
    value: int = 0

    def apply_Incremented(self, event: Incremented) -> None:
        self.value += event.by


class HotCounterRepository(EventSourcedRepository[HotCounter, str]): ...


class HotRow(AggregateRoot[str]):
    value: int = 0


class HotRowRepository(MongoRepository[HotRow, str]):
    entity_type = HotRow
    collection = "hot_rows"


@dataclass
class Outcome:
    kind: str
    landed: int
    failed: int
    attempts: int
    elapsed: float
    stored: int


async def contend(kind: str, factory: MongoUnitOfWorkFactory, tasks: int, cycles: int) -> Outcome:
    registry = PersistenceRegistry()
    entity: type[AggregateRoot[str]]
    if kind == "event_sourced":
        entity = HotCounter
        registry.register_operation(HotCounter, HotCounterRepository)
        registry.register_retrieval(HotCounter, HotCounterRepository)
    else:
        entity = HotRow
        registry.register_operation(HotRow, HotRowRepository)
        registry.register_retrieval(HotRow, HotRowRepository)
    dispatcher = PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)
    key = f"hot-{uuid.uuid4().hex[:8]}"
    seed = entity(id=key)
    if isinstance(seed, HotCounter):
        seed.add_event(Incremented(by=0))
    await dispatcher.apply(seed)
    attempts = 0

    async def cycle(uow: MongoUnitOfWork) -> None:
        nonlocal attempts
        attempts += 1
        [current] = await dispatcher.fetch_domain(entity, [key], uow=uow)
        if isinstance(current, HotCounter):
            current.add_event(Incremented(by=1))
        elif isinstance(current, HotRow):
            current.value += 1
        await dispatcher.apply(current, uow=uow)

    landed = failed = 0

    async def worker() -> None:
        nonlocal landed, failed
        for _ in range(cycles):
            try:
                await factory.run(cycle)
                landed += 1
            except TransactionError:
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    elapsed = time.perf_counter() - start
    [final] = await dispatcher.fetch_domain(entity, [key])
    return Outcome(kind, landed, failed, attempts, elapsed, int(getattr(final, "value", -1)))


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_stream", description=__doc__)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--only", default="event_sourced,state_stored")
    args = parser.parse_args(argv)
    async with server_uri() as (uri, _):
        client: Any = create_client(uri)
        try:
            factory = MongoUnitOfWorkFactory(client, f"bench_hot_{uuid.uuid4().hex[:8]}")
            print(f"{'kind':<14} {'landed':>6} {'failed':>6} {'attempts':>8} {'s':>7} stored")
            for kind in args.only.split(","):
                o = await contend(kind.strip(), factory, args.tasks, args.cycles)
                print(
                    f"{o.kind:<14} {o.landed:>6} {o.failed:>6} {o.attempts:>8} {o.elapsed:>7.1f} "
                    f"{o.stored} (attempts/commit {o.attempts / max(1, o.landed):.1f}, "
                    f"budget {factory.retry_budget_seconds:g} s)"
                )
        finally:
            await client.close()


if __name__ == "__main__":
    asyncio.run(main())
