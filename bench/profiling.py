"""cProfile of one implementation's operation, summarised as where its client CPU goes."""

from __future__ import annotations

import cProfile
import io
import pstats
import time

from bench.measure import Op


async def profile_op(op: Op, iterations: int, top: int = 12) -> str:
    """Run ``op`` ``iterations`` times under cProfile, timed by process CPU (not wall).

    Returns the costliest functions by own CPU time, then the package's own functions by
    cumulative CPU time (what each layer of cqrs-mongo costs, callees included).
    """
    # process_time as the timer: time spent waiting for the server is not CPU, and would
    # otherwise bury everything under the event loop's epoll.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(iterations):
        await op()
    profiler.disable()
    own = _stats(profiler, "tottime", top)
    package = _stats(profiler, "cumulative", top, "cqrs_mongo")
    return f"{own}\n  -- cqrs_mongo functions by cumulative CPU --\n{package}"


def _stats(profiler: cProfile.Profile, key: str, top: int, restrict: str = "") -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats(key)
    if restrict:
        stats.print_stats(restrict, top)
    else:
        stats.print_stats(top)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(line for line in lines[start:] if line.strip())
