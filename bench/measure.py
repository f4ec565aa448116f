"""Timing loop: wall latency, client CPU and database commands per operation; peak memory."""

from __future__ import annotations

import gc
import math
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cqrs_mongo.testing import CommandCounter

Op = Callable[[], Awaitable[Any]]


@dataclass
class Series:
    """The measurements of one implementation of one workload."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    commands: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        """Median and p95 wall (ms), mean CPU (ms) and commands per operation."""
        return {
            "iterations": len(self.wall),
            "median_ms": statistics.median(self.wall) * 1e3,
            "p95_ms": percentile(self.wall, 95) * 1e3,
            "cpu_ms": statistics.fmean(self.cpu) * 1e3,
            "commands": statistics.median(self.commands),
            "commands_min": min(self.commands),
            "commands_max": max(self.commands),
        }


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


async def measure(
    ops: Mapping[str, Op], iterations: int, warmup: int, counter: CommandCounter
) -> dict[str, Series]:
    """Run every op ``warmup`` times unmeasured, then ``iterations`` times measured.

    The implementations take turns within each round, and the order rotates every round, so
    a drift of the machine or the server (caches warming, a collection growing) spreads over
    all of them alike instead of favouring whichever ran first.
    """
    names = list(ops)
    for _ in range(warmup):
        for name in names:
            await ops[name]()
    series = {name: Series() for name in names}
    for round_number in range(iterations):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            op = ops[name]
            counter.reset()
            cpu_start = time.process_time()
            wall_start = time.perf_counter()
            await op()
            wall = time.perf_counter() - wall_start
            cpu = time.process_time() - cpu_start
            record = series[name]
            record.wall.append(wall)
            record.cpu.append(cpu)
            record.commands.append(counter.total)
    return series


async def peak_memory(op: Op) -> int:
    """The client's peak traced allocation (bytes) above what it held before ``op`` ran."""
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await op()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return max(0, peak - baseline)
