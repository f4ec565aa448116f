"""Benchmark cqrs-mongo against raw pymongo and Beanie on the same server, in the same run.

Usage::

    python -m bench                 # default: a few minutes
    python -m bench --quick         # a few iterations of everything (smoke test)
    python -m bench --iterations 500 --warmup 50 --only load_ids,page
    MONGODB_URI=mongodb://localhost:27017/?replicaSet=rs0&directConnection=true python -m bench

Without ``MONGODB_URI`` the embedded SecantusDB server runs as a child process, so the client
CPU measured here is the client's alone. Results go to stdout and ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import dataset, machine, report
from bench.beanie_side import BeanieSide
from bench.cqrs_side import CqrsSide, CqrsSingleWrites, OrderRows
from bench.measure import Op, measure, peak_memory
from bench.models import OrderRow
from bench.raw_side import RawSide, RawSingleWrites
from cqrs_mongo.mongo import create_client, ensure_indexes
from cqrs_mongo.testing import CommandCounter

RESULTS = Path(__file__).parent / "results"
SINGLE_WRITE_WORKLOADS = ("update", "es_append")
# Issue 14: a one-document write through cqrs-mongo within 1.1x the plain write's wall time.
WALL_TARGETS = {"persist": 1.1, "update": 1.1, "es_append": 1.1}
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
STREAM_WORKLOADS = (
    *(f"es_stream{length}" for length in dataset.STREAM_LENGTHS),
    "es_snapshot",
)
WORKLOADS = (
    "persist",
    "load_ids",
    "page",
    "stream",
    "es_apply",
    "es_load",
    "cached",
    *STREAM_WORKLOADS,
    *SINGLE_WRITE_WORKLOADS,
)


@dataclass(frozen=True)
class Settings:
    mode: str
    iterations: int
    warmup: int
    stream_iterations: int
    stream_rows: int
    total_rows: int
    only: tuple[str, ...]
    output: Path
    profile: bool


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few iterations, small data")
    parser.add_argument("--iterations", type=int, help="measured iterations per workload")
    parser.add_argument("--warmup", type=int, help="unmeasured iterations first")
    parser.add_argument("--stream-iterations", type=int, help="measured iterations of stream()")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    parser.add_argument(
        "--output", type=Path, help="JSON results file (default: bench/results/latest.json)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the cqrs-mongo side")
    args = parser.parse_args(argv)
    only = tuple(w.strip() for w in args.only.split(",") if w.strip())
    unknown = sorted(set(only) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    quick = args.quick
    return Settings(
        mode="quick" if quick else "default",
        iterations=args.iterations or (5 if quick else 200),
        warmup=args.warmup if args.warmup is not None else (1 if quick else 20),
        stream_iterations=args.stream_iterations or (3 if quick else 15),
        stream_rows=500 if quick else 10_000,
        total_rows=5_000 if quick else 100_000,
        only=only,
        output=args.output or RESULTS / ("quick.json" if quick else "latest.json"),
        profile=args.profile,
    )


async def seed(database: Any, cqrs: CqrsSide, total_rows: int) -> None:
    """The shared data: read-model rows, customers, and 100 carts of 10 events."""
    rows = database["order_rows"]
    for start in range(0, total_rows, 5_000):
        batch = [dataset.order_row(i) for i in range(start, min(start + 5_000, total_rows))]
        await rows.insert_many(batch, ordered=False)
    await ensure_indexes(database, [OrderRows])
    customers = [dataset.customer_document(i) for i in range(dataset.SEED_CUSTOMERS)]
    await database["customers"].insert_many(customers, ordered=False)
    await cqrs.seed_carts(dataset.cart_ids())
    await cqrs.seed_streams()


def workloads(
    settings: Settings, raw: RawSide, val: RawSide, cqrs: CqrsSide, beanie: BeanieSide, keys: Any
) -> dict[str, tuple[str, dict[str, Op], str]]:
    """key -> (title, implementation -> op, note)."""
    ids, carts, row_ids = dataset.load_ids(), dataset.cart_ids(), dataset.row_ids()
    rows, total = settings.stream_rows, settings.total_rows

    def each(method: str, *args: Any) -> dict[str, Op]:
        sides = {"raw": raw, "raw+validate": val, "cqrs-mongo": cqrs, "beanie": beanie}
        return {name: _bind(side, method, *args) for name, side in sides.items()}

    page = each("page")
    page["cqrs-mongo (dispatcher)"] = cqrs.page_via_dispatcher
    page["beanie"] = page.pop("beanie")
    return {
        "persist": (
            "insert one new aggregate",
            each("persist_one"),
            "raw = insert_one with majority write concern, no transaction (one document is "
            "atomic by itself); beanie = insert in a transaction",
        ),
        "load_ids": ("load 100 aggregates by id", each("load_ids", ids), ""),
        "page": (
            f"specification query: a {dataset.PAGE_SIZE}-row page with its total",
            page,
            "cqrs-mongo = MongoReadModel.fetch_page ($facet); (dispatcher) = "
            "dispatcher.fetch(...).page(), the same $facet",
        ),
        "stream": (
            f"stream {rows:,} rows (batch {dataset.STREAM_BATCH})",
            each("stream", rows, total),
            "",
        ),
        "es_apply": ("event-sourced apply: a new stream of 10 events", each("es_apply"), ""),
        "es_load": (
            "load 100 event-sourced aggregates (10 events each)",
            each("es_load", carts),
            "beanie returns event documents, not aggregates (it has no event sourcing)",
        ),
        "cached": (
            "cached fetch of 100 read models by id (Redis, all hits)",
            {
                "raw": _bind(raw, "cached", keys),
                "raw+validate": _bind(val, "cached", keys),
                "cqrs-mongo": _bind(cqrs, "cached", row_ids),
            },
            "raw = one MGET + json.loads; cqrs-mongo = one MGET of entries and generations",
        ),
        **stream_workloads(raw, val, cqrs),
        **single_write_workloads(raw, val, cqrs),
    }


_single_write_sides: dict[str, Any] = {}
# How many times each side's update and append ran (warm-up, measurement and any profiling).
_single_write_calls: dict[tuple[str, str], int] = {}


async def check_single_writes(database: Any) -> None:
    """Every side of ``update`` and ``es_append`` stored the same thing (a wrong one fails):
    documents of the same shape, at the version its own number of updates gives, and a
    gap-free stream as long as its own number of appends."""
    shapes = {}
    for name, side in _single_write_sides.items():
        customer_id = side.customer_id()
        customer = None
        if customer_id:
            customer = await database["customers"].find_one({"_id": customer_id})
        stream_id = side.stream()
        versions = []
        if stream_id:
            cursor = database["events"].find({"stream_id": stream_id}, sort=[("version", 1)])
            versions = [event["version"] async for event in cursor]
        updates = _single_write_calls.get((name, "update"), 0)
        appends = _single_write_calls.get((name, "es_append"), 0)
        shapes[name] = (
            None if customer is None else tuple(sorted(customer)),
            customer is None or customer["version"] == updates,
            versions == list(range(1, appends + 1)),
        )
    if len(set(shapes.values())) > 1 or not all(ok for _, *oks in shapes.values() for ok in oks):
        raise AssertionError(f"the single-write workloads stored different data: {shapes}")


def _counted(side: str, workload: str, op: Op) -> Op:
    async def counted() -> Any:
        _single_write_calls[side, workload] = _single_write_calls.get((side, workload), 0) + 1
        return await op()

    return counted


def single_write_workloads(
    raw: RawSide, val: RawSide, cqrs: CqrsSide
) -> dict[str, tuple[str, dict[str, Op], str]]:
    """One-document writes other than ``persist``: raw is the plain write, majority, no txn."""
    sides = {
        "raw": RawSingleWrites(raw),
        "raw+validate": RawSingleWrites(val),
        "cqrs-mongo": CqrsSingleWrites(cqrs),
    }
    _single_write_sides.clear()
    _single_write_sides.update(sides)
    _single_write_calls.clear()
    note = "raw = the plain write with majority write concern, no transaction"
    return {
        "update": (
            "version-checked update of one state-stored aggregate",
            {name: _counted(name, "update", side.update_one) for name, side in sides.items()},
            note + " (replace_one on {_id, version}, matched checked)",
        ),
        "es_append": (
            "append one event to an event-sourced aggregate (no snapshot)",
            {name: _counted(name, "es_append", side.append_one) for name, side in sides.items()},
            note + " (insert_one of the next event)",
        ),
    }


# --- one event-sourced aggregate: es_stream<n> and es_snapshot -------------------------------


def stream_workloads(
    raw: RawSide, val: RawSide, cqrs: CqrsSide
) -> dict[str, tuple[str, dict[str, Op], str]]:
    """The single-aggregate event-sourced loads (no Beanie: it has no event sourcing)."""

    def sides(method: str, stream_id: str) -> dict[str, Op]:
        return {
            name: _bind(side, method, stream_id)
            for name, side in (("raw", raw), ("raw+validate", val), ("cqrs-mongo", cqrs))
        }

    found: dict[str, tuple[str, dict[str, Op], str]] = {
        f"es_stream{length}": (
            f"load one event-sourced aggregate of {length:,} events (no snapshot)",
            sides("es_stream", dataset.stream_cart_id(length)),
            "raw = find({stream_id: id}) sorted by version, one batch",
        )
        for length in dataset.STREAM_LENGTHS
    }
    found["es_snapshot"] = (
        f"load one aggregate of {dataset.SNAPSHOT_EVERY:,} events, snapshot at "
        f"{dataset.SNAPSHOT_EVERY:,}",
        sides("es_snapshot", dataset.SNAPSHOT_CART_ID),
        "raw = snapshot find_one({_id}) + find({stream_id, version > snapshot's}) by version",
    )
    return found


async def check_stream_workloads(
    workloads: dict[str, tuple[str, dict[str, Op], str]], keys: Sequence[str]
) -> None:
    """Refuse to measure a single-aggregate workload whose sides return different data.

    raw+validate and cqrs-mongo must return equal aggregates; raw the same stream (as many
    event documents past the snapshot as the aggregate has versions past it).
    """
    for key in keys:
        ops = workloads[key][1]
        validated, ours = await ops["raw+validate"](), await ops["cqrs-mongo"]()
        dumps = [[a.model_dump() for a in result] for result in (validated, ours)]
        raw = await ops["raw"]()
        snapshot, events = (raw[0], raw[1]) if key == "es_snapshot" else (None, raw)
        versions = [e["version"] for e in events]
        start = snapshot["version"] if snapshot else 0
        if (
            dumps[0] != dumps[1]
            or len(ours) != 1
            or versions != list(range(start + 1, ours[0].version + 1))
        ):
            raise RuntimeError(f"{key}: raw, raw+validate and cqrs-mongo disagree")


def _bind(side: Any, method: str, *args: Any) -> Op:
    function = getattr(side, method)

    async def op() -> Any:
        return await function(*args)

    return op


async def run(settings: Settings) -> dict[str, Any]:
    counter = CommandCounter()
    database_name = f"bench_{uuid.uuid4().hex[:8]}"
    async with machine.server_uri() as (uri, origin):
        raw_client = create_client(uri, event_listeners=[counter])
        cqrs_client = create_client(uri, event_listeners=[counter])
        # The same codec options for Beanie: Decimal128 decodes to Decimal as for the others.
        beanie_client = create_client(uri, event_listeners=[counter])
        from redis.asyncio import Redis

        redis = Redis.from_url(REDIS_URL)
        cqrs = CqrsSide(cqrs_client, database_name, REDIS_URL)
        try:
            raw = RawSide(raw_client, database_name, redis, validate=False)
            val = RawSide(raw_client, database_name, redis, validate=True)
            beanie = BeanieSide(beanie_client, database_name)
            await beanie.start()
            await seed(raw_client[database_name], cqrs, settings.total_rows)
            rows = await (await cqrs.dispatcher.fetch(OrderRow, dataset.row_ids()))
            keys = await raw.prime_cache(rows, f"bench-raw-{uuid.uuid4().hex[:8]}")
            document = await _measure_all(settings, raw, val, cqrs, beanie, keys, counter)
            document["machine"] = machine.describe(origin)
            await redis.delete(*keys)
        finally:
            await raw_client.drop_database(database_name)
            await cqrs.close()
            await redis.aclose()
            for client in (raw_client, cqrs_client, beanie_client):
                await client.close()
    return document


async def _measure_all(
    settings: Settings,
    raw: RawSide,
    val: RawSide,
    cqrs: CqrsSide,
    beanie: BeanieSide,
    keys: list[str],
    counter: CommandCounter,
) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    profiles: dict[str, str] = {}
    all_workloads = workloads(settings, raw, val, cqrs, beanie, keys)
    await check_stream_workloads(all_workloads, [k for k in STREAM_WORKLOADS if k in settings.only])
    for key, (title, ops, note) in all_workloads.items():
        if key not in settings.only:
            continue
        stream = key == "stream"
        iterations = settings.stream_iterations if stream else settings.iterations
        warmup = min(settings.warmup, 2) if stream else settings.warmup
        series = await measure(ops, iterations, warmup, counter)
        summaries = {name: s.summary() for name, s in series.items()}
        rows = report.with_ratios(summaries)
        wall_target = WALL_TARGETS.get(key, report.WALL_TARGET)
        results.append(
            {
                "key": key,
                "title": title,
                "note": note,
                "results": rows,
                "targets": report.targets(rows, wall_target=wall_target),
                "wall_target": wall_target,
            }
        )
        if settings.profile:
            from bench.profiling import profile_op

            profiles[key] = await profile_op(ops["cqrs-mongo"], 3 if stream else 200)
    if _single_write_sides and set(SINGLE_WRITE_WORKLOADS) & set(settings.only):
        await check_single_writes(cqrs.factory.database)
    memory = {}
    if "stream" in settings.only:
        memory = await _memory(settings, raw, val, cqrs, beanie)
    return {
        "settings": {
            **settings.__dict__,
            "output": str(settings.output),
            "only": list(settings.only),
        },
        "workloads": results,
        "memory": memory,
        "profiles": profiles,
    }


async def _memory(
    settings: Settings, raw: RawSide, val: RawSide, cqrs: CqrsSide, beanie: BeanieSide
) -> dict[str, dict[str, int]]:
    sizes = (settings.stream_rows, settings.total_rows)
    sides = {"raw": raw, "raw+validate": val, "cqrs-mongo": cqrs, "beanie": beanie}
    return {
        name: {
            f"{size:,}": await peak_memory(_bind(side, "stream", size, settings.total_rows))
            for size in sizes
        }
        for name, side in sides.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    document = asyncio.run(run(settings))
    print(report.table(document))
    for key, text in document.get("profiles", {}).items():
        print(f"[profile {key}] cqrs-mongo, top functions by own time\n{text}")
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    settings.output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"results written to {settings.output}")
    return 0
