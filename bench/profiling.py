"""cProfile of one implementation's operation, summarised as its costliest functions."""

from __future__ import annotations

import cProfile
import io
import pstats

from bench.measure import Op


async def profile_op(op: Op, iterations: int, top: int = 15) -> str:
    """Run ``op`` ``iterations`` times under cProfile; the top functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations):
        await op()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    return _trim(out.getvalue())


def _trim(text: str) -> str:
    # Keep the column header and the rows; drop pstats' preamble.
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(line for line in lines[start:] if line.strip())
