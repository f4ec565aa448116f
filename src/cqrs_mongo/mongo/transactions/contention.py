"""Graceful contention: a handler that lost a write conflict queues for the aggregates it wrote.

Optimistic concurrency alone degrades badly on a hot aggregate: with fifty tasks of one process
re-running load-modify-write against the same stream, every commit makes the other forty-nine
attempts fail, and each of them re-reads the aggregate before failing again (the runner's
backoff spreads them out but cannot order them). So after a retryable failure the runner
records which aggregates the failed attempt wrote (``UnitOfWork.touched``) and runs the next
attempts only while holding an in-process lock for each of them, until the handler commits or
gives up (a holder that loses once more to a first attempt keeps its turn instead of going to
the back of the queue). Tasks that have already lost once then take turns instead of colliding;
first attempts still run freely, so an uncontended aggregate pays nothing, and correctness never
depends on the locks (other processes are not queued: their conflicts are still detected by the
database and retried as before).

Locks are taken all at once, in a fixed order, and never while holding another (a growing key
set releases and re-takes them all), so two tasks can never wait on each other. Waiting counts
against the retry budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Hashable
from dataclasses import dataclass, field


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ConflictQueue:
    """Per-aggregate in-process locks for attempts that follow a lost conflict."""

    def __init__(self) -> None:
        self._slots: dict[Hashable, _Slot] = {}

    def __len__(self) -> int:
        """How many aggregates currently have a holder or a waiter."""
        return len(self._slots)

    @contextlib.asynccontextmanager
    async def hold(self, keys: Collection[Hashable], within: float) -> AsyncIterator[None]:
        """Hold the locks of ``keys`` for the duration of the block.

        Raises:
            TimeoutError: the locks could not all be taken within ``within`` seconds.
        """
        if not keys:
            yield
            return
        ordered = sorted(keys, key=repr)
        slots = [self._slots.setdefault(key, _Slot()) for key in ordered]
        for slot in slots:
            slot.users += 1
        taken: list[_Slot] = []
        try:
            async with asyncio.timeout(max(0.0, within)):
                for slot in slots:
                    await slot.lock.acquire()
                    taken.append(slot)
            yield
        finally:
            for slot in taken:
                slot.lock.release()
            for key, slot in zip(ordered, slots, strict=True):
                slot.users -= 1
                if slot.users == 0:
                    del self._slots[key]
