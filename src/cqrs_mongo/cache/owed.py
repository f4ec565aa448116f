"""OwedInvalidations: what failed cache calls left owed, paid as soon as the cache answers.

Two debts. *Generation bumps* this process could not write (its own invalidations, holds
included) are kept by key and written again. And *the namespace epoch*: during an outage a
process cannot know which invalidations were lost, its own or other processes' (a writer that
dies before Redis returns takes its pending bumps with it), so after any failed cache call it
owes a new epoch; every entry is stamped with the epoch, so once it is replaced no process
serves an entry written before the outage, even if Redis kept its data. A hold guards against
commits that have not landed yet, which an epoch bump now cannot, so pending holds are written
after the epoch too.

Debts are paid before every read and invalidation, and by a background task every breaker
cooldown, so a process that stays idle after an outage pays them all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from cqrs_mongo.cache.keys import CacheKeys
from cqrs_mongo.cache.resilient_cache import UNAVAILABLE, ResilientCache

HOLD_PREFIX = b"hold-"


def new_generation() -> bytes:
    """A fresh, never-reused generation (or epoch) token."""
    return secrets.token_hex(12).encode()


def new_hold() -> bytes:
    """A generation token under which entries are neither served nor stored while it lasts."""
    return HOLD_PREFIX + new_generation()


def is_hold(generation: bytes) -> bool:
    """Whether ``generation`` is a hold."""
    return generation.startswith(HOLD_PREFIX)


class OwedInvalidations:
    """The generation bumps and epoch bump this process owes the cache.

    Args:
        cache: the guarded cache service; its failure count says when an epoch is owed.
        keys: the key layout (the epoch key).
    """

    def __init__(self, cache: ResilientCache, keys: CacheKeys) -> None:
        self.cache = cache
        self.keys = keys
        # Generation key -> (its TTL, whether it is a hold), for bumps not yet written.
        self._bumps: dict[str, tuple[float | None, bool]] = {}
        # Cache failures up to this count are covered by an epoch bump already written.
        self._failures_covered = cache.stats.failures
        self._retrier: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Generation bumps not yet written."""
        return len(self._bumps)

    @property
    def settled(self) -> bool:
        """Whether nothing is owed (no epoch bump, no generation bump)."""
        return not self._bumps and self.cache.stats.failures <= self._failures_covered

    def add(self, key: str, ttl: float | None, *, hold: bool) -> None:
        """Owe a bump of generation ``key``; a hold owed already is kept (it is stricter)."""
        earlier = self._bumps.get(key)
        if earlier is not None and earlier[1] and not hold:
            return
        self._bumps[key] = (ttl, hold)

    async def pay(self) -> bool:
        """Write everything owed, epoch first; ``False`` (retried later) if the cache fails."""
        failures = self.cache.stats.failures
        if failures > self._failures_covered:
            if not await self._write({self.keys.epoch(): new_generation()}, None):
                self._retry_later()
                return False
            self._failures_covered = failures
            self.cache.stats.epochs += 1
        if not self._bumps:
            return True
        batches: dict[tuple[float | None, bool], dict[str, bytes]] = {}
        for key, (ttl, held) in self._bumps.items():
            batches.setdefault((ttl, held), {})[key] = new_hold() if held else new_generation()
        for (ttl, _), bumps in batches.items():
            if not await self._write(bumps, ttl):
                self._retry_later()
                return False
            for key in bumps:
                self._bumps.pop(key, None)
        return True

    def failed(self) -> None:
        """A cache call failed: make sure the debts it created are paid in the background."""
        if not self.settled:
            self._retry_later()

    async def aclose(self) -> None:
        """Stop the background payments (what is still owed is lost with the process)."""
        retrier, self._retrier = self._retrier, None
        if retrier is not None and not retrier.done():
            retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retrier

    def _retry_later(self) -> None:
        if self._retrier is None or self._retrier.done():
            self._retrier = asyncio.get_running_loop().create_task(self._retry_until_settled())

    async def _retry_until_settled(self) -> None:
        while not self.settled:
            await asyncio.sleep(self.cache.breaker.cooldown)
            await self.pay()

    async def _write(self, bumps: dict[str, bytes], ttl: float | None) -> bool:
        done = await self.cache.call("invalidate", lambda s: s.set_many(bumps, ttl))
        return done is not UNAVAILABLE
