"""Client instructions per one-document write, counted by callgrind: a measure that holds still.

Usage::

    python -m bench.instructions                     # persist, update, es_append; 300 ops each
    python -m bench.instructions --only update --ops 500

Process CPU time on a shared VM drifts 10-20% between runs, more than the distance between the
one-document writes and their CPU target (1.2x raw + validate). Callgrind counts the
instructions the client executes, the same from run to run within about 0.3%. Each side of
each workload runs in a process of its own under valgrind, against the embedded server (a
separate process, not counted, so what is counted is the client's own work); a valgrind
client request turns counting on for exactly the measured operations, after a warm-up, so
imports, start-up and the warm-up are left out. Instructions are not time (a cache miss costs
more than an add), so read them beside ``python -m bench``'s CPU column, not instead of it.

Needs ``valgrind`` and a C compiler: the client request is a valgrind macro, compiled once into
a small library that the measured process loads with ctypes.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

WORKLOADS = {
    "persist": "insert one new aggregate",
    "update": "version-checked update of one state-stored aggregate",
    "es_append": "append one event to an event-sourced aggregate (no snapshot)",
}
SIDES = ["raw", "raw+validate", "cqrs-mongo"]
WARMUP = 30

TOGGLE_SOURCE = """
#include <valgrind/callgrind.h>
void count_from_here(void) { CALLGRIND_ZERO_STATS; CALLGRIND_TOGGLE_COLLECT; }
void count_to_here(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS; }
"""


def build_toggle(directory: Path) -> Path:
    """The library whose two functions start and stop callgrind's counting."""
    source, library = directory / "toggle.c", directory / "toggle.so"
    source.write_text(TOGGLE_SOURCE)
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", library, source], check=True)
    return library


async def operation(
    workload: str, side: str, uri: str
) -> tuple[Callable[[], Awaitable[Any]], Any, str]:
    """The benchmark's own operation for ``side`` (see bench/README.md), its client and the
    database it writes to."""
    from bench.cqrs_side import CqrsSide, CqrsSingleWrites
    from bench.raw_side import RawSide, RawSingleWrites
    from cqrs_mongo.mongo import create_client
    from cqrs_mongo.testing import CommandCounter

    # The benchmark's clients carry a command listener; so do these. No heartbeat during the
    # count (a monitor's hello would land in whichever side's count it fell in).
    client = create_client(uri, event_listeners=[CommandCounter()], heartbeatFrequencyMS=3_600_000)
    database = f"bench_instr_{uuid.uuid4().hex[:8]}"
    if side == "cqrs-mongo":
        cqrs = CqrsSide(client, database, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        persist, writes = cqrs.persist_one, CqrsSingleWrites(cqrs)
        update, append = writes.update_one, writes.append_one
    else:
        raw = RawSide(client, database, None, validate=side == "raw+validate")
        singles = RawSingleWrites(raw)
        persist, update, append = raw.persist_one, singles.update_one, singles.append_one
    chosen = {"persist": persist, "update": update, "es_append": append}[workload]
    return chosen, client, database


async def child(workload: str, side: str, uri: str, ops: int, library: str) -> None:
    """Run the operation ``ops`` times with counting on (the process valgrind runs)."""
    toggle = ctypes.CDLL(library)
    op, client, database = await operation(workload, side, uri)
    try:
        for _ in range(WARMUP):
            await op()
        toggle.count_from_here()
        for _ in range(ops):
            await op()
        toggle.count_to_here()
    finally:
        await client.drop_database(database)
        await client.close()


def count(workload: str, side: str, uri: str, ops: int, library: Path, work: Path) -> float:
    """Instructions per operation of ``side`` (one process under callgrind)."""
    out = work / f"{workload}-{side}.cg"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.instructions",
        "--child",
        workload,
        side,
        uri,
        str(ops),
        str(library),
    ]
    subprocess.run(command, check=True, capture_output=True, cwd=Path(__file__).parent.parent)
    total = 0
    for dump in work.glob(f"{out.name}*"):
        for line in dump.read_text().splitlines():
            if line.startswith("summary:"):
                total += int(line.split()[1])
        dump.unlink()
    return total / ops


async def main(argv: Sequence[str] | None = None) -> None:
    from bench.machine import server_uri

    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    parser.add_argument("--ops", type=int, default=300, help="counted operations per side")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("cc") is None:
        raise SystemExit("bench.instructions needs valgrind and a C compiler (cc).")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        library = build_toggle(work)
        async with server_uri() as (uri, origin):
            print(f"client instructions per operation (callgrind), {args.ops} ops; {origin}")
            header = f"{'instructions':>13} {'x raw':>7} {'x raw+val':>10}"
            print(f"{'workload':<10} {'side':<13} {header}")
            for workload in args.only.split(","):
                counted = {
                    side: await asyncio.to_thread(
                        count, workload, side, uri, args.ops, library, work
                    )
                    for side in SIDES
                }
                for side, value in counted.items():
                    print(
                        f"{workload:<10} {side:<13} {value:>13,.0f} "
                        f"{value / counted['raw']:>7.3f} {value / counted['raw+validate']:>10.3f}"
                    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        workload, side, uri, ops, library = sys.argv[2:7]
        asyncio.run(child(workload, side, uri, int(ops), library))
    else:
        asyncio.run(main())
