"""ResilientCache: bounded, breaker-guarded cache calls that report outages once and never raise."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cqrs_mongo.cache.circuit_breaker import CircuitBreaker
from cqrs_mongo.cache.ports import ICacheService
from cqrs_mongo.persistence.hooks import HookEvent, Hooks

logger = logging.getLogger("cqrs_mongo.cache")

T = TypeVar("T")


class Unavailable(enum.Enum):
    """The marker returned instead of a result when the cache was skipped or failed."""

    UNAVAILABLE = "unavailable"


UNAVAILABLE = Unavailable.UNAVAILABLE


@dataclass(slots=True)
class CacheStats:
    """Counters a metrics exporter can read (all monotonic since construction).

    Attributes:
        hits: ids answered from the cache.
        misses: ids the cache could have answered but did not (then read from the database).
        bypassed: reads that did not consult the cache (a unit of work that has written).
        failures: cache calls that failed or timed out.
        skipped: cache calls not attempted because the breaker was open.
        outages: times the cache went from working to failing.
        garbage: entries that could not be decoded (treated as misses and deleted).
        invalidations: ids whose generation was bumped by a write.
        epochs: namespace epoch bumps (after cache failures) that made every entry stale.
    """

    hits: int = 0
    misses: int = 0
    bypassed: int = 0
    failures: int = 0
    skipped: int = 0
    outages: int = 0
    garbage: int = 0
    invalidations: int = 0
    epochs: int = 0


class ResilientCache:
    """Runs calls on an :class:`ICacheService` so that a broken cache costs little and says so.

    Each call is bounded by ``timeout`` seconds (on top of the client's socket timeouts, which
    a custom service may lack). A failure opens the :class:`CircuitBreaker`, so later calls are
    skipped at no cost until a probe succeeds. The first failure of an outage is logged at
    WARNING and emitted as a ``cache.outage`` hook event; the recovery is logged and emitted as
    ``cache.recovered``; every failed call is emitted as an ``error`` event of
    ``cache.<operation>`` and counted in :attr:`stats`.
    """

    def __init__(
        self,
        service: ICacheService,
        *,
        timeout: float = 1.0,
        breaker: CircuitBreaker | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.service = service
        self.timeout = timeout
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self.hooks = hooks if hooks is not None else Hooks()
        self.stats = CacheStats()
        self._outage_calls = 0

    @property
    def available(self) -> bool:
        """Whether the last call to the cache succeeded (or none has failed yet)."""
        return self.breaker.opened_at is None

    async def call(
        self,
        operation: str,
        run: Callable[[ICacheService], Awaitable[T]],
        target: type[Any] | None = None,
        ids: Sequence[Any] = (),
    ) -> T | Unavailable:
        """``await run(service)``, or :data:`UNAVAILABLE` if skipped, failed or too slow."""
        if not self.breaker.allow():
            self.stats.skipped += 1
            self._outage_calls += 1
            return UNAVAILABLE
        try:
            async with asyncio.timeout(self.timeout):
                result = await run(self.service)
        except Exception as exc:  # any backend failure degrades to a miss, never to an error
            await self._failed(operation, target, ids, exc)
            return UNAVAILABLE
        outage_started = self.breaker.opened_at
        if self.breaker.record_success():
            await self._recovered(outage_started)
        return result

    async def _failed(
        self, operation: str, target: type[Any] | None, ids: Sequence[Any], exc: Exception
    ) -> None:
        self.stats.failures += 1
        self._outage_calls += 1
        if self.breaker.record_failure():
            self.stats.outages += 1
            self._outage_calls = 1
            logger.warning(
                "Cache unavailable (%s failed: %r); reading from the database and retrying "
                "the cache every %.1f s.",
                operation,
                exc,
                self.breaker.cooldown,
            )
            await self.hooks.emit(HookEvent("error", "cache.outage", target, ids, error=exc))
        await self.hooks.emit(HookEvent("error", f"cache.{operation}", target, ids, error=exc))

    async def _recovered(self, outage_started: float | None) -> None:
        lasted = self.breaker.clock() - outage_started if outage_started is not None else 0.0
        logger.warning(
            "Cache available again after %.1f s; %d calls failed or were skipped meanwhile.",
            lasted,
            self._outage_calls,
        )
        detail = {"outage_seconds": lasted, "calls": self._outage_calls}
        self._outage_calls = 0
        await self.hooks.emit(HookEvent("after", "cache.recovered", detail=detail))
