"""CachingPersistenceDispatcher: read-through cache, after-commit invalidation, any dispatcher.

It wraps an ``IPersistenceDispatcher`` and behaves like it from the caller's side (same
methods, same arguments, same return types), following the product spec's table:

* ``apply`` writes through the inner dispatcher, then invalidates the entity's (type, id):
  through the unit's after-commit callbacks when a unit of work is passed (a unit that rolls
  back invalidates nothing), or right after the call when ``uow`` is ``None`` (the inner
  dispatcher then opened and committed its own unit before returning).
* ``fetch_domain`` and ``fetch`` by a list of ids read through the cache: one ``MGET`` for all
  ids; misses go to the inner dispatcher in one call and are stored.
* ``fetch`` by specification or ``QueryOptions`` is not cached: it goes straight through.

What is never cached. A unit of work that has written (``uow.has_written``) bypasses the cache
entirely: its reads see its own uncommitted writes, which must never reach the cache, and
cached state must not hide them.

Units that have not written. They are answered with committed state: from the cache, and on a
miss from a fresh read that fills it. The miss is *not* read in the unit's transaction: a
snapshot transaction sees the database as it was at its first read, which may be older than
the last invalidation, so a value it read could be stored stamped with the generation that
invalidation created, and served until it expires. Reading the miss with ``uow=None`` (the inner
dispatcher opens a fresh unit, after the cache lookup) keeps the ordering the generation
argument needs: generation first, then a read of the latest committed state. Units that read
the latest committed state themselves (a read-only unit, or a Mongo unit with no transaction,
``in_transaction`` false) are read directly. So a unit may get a value newer than its own
snapshot, as it does on a hit; a write based on it fails its version check and is retried.
The cache assumes one store per type (the type's registered source): a unit opened by hand on
another database is answered from that store too.

Stale reads. Entries are stamped with the per-id generation current before the database read
and served only while the generation is unchanged; invalidation replaces the generation. A
reader that loaded an old value and stores it after a writer's invalidation therefore stores an
entry no one will be served. The full argument is in :mod:`cqrs_mongo.cache.read_through`.

Outages. Every cache call is bounded (socket timeouts, plus an overall timeout) and guarded by a
circuit breaker: after a failure the cache is skipped for ``breaker_cooldown`` seconds, then
one call probes it. Reads then go to the inner dispatcher; invalidations that could not be
written are retried in the background and before the cache is read again. Other processes may
have lost invalidations in the same outage, so a process that saw the cache fail first replaces
the namespace epoch (part of every entry's stamp) when it comes back: no entry written before
the outage is served again, by any process. An outage is logged once when it begins
and once when it ends, emitted as ``cache.outage`` / ``cache.recovered`` hook events and
counted in :attr:`CachingPersistenceDispatcher.stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
    Set,
)
from typing import Any, TypeVar
from weakref import WeakSet

from cqrs_mongo.cache.circuit_breaker import CircuitBreaker
from cqrs_mongo.cache.keys import CacheKeys, Kind, id_token
from cqrs_mongo.cache.ports import ICacheService
from cqrs_mongo.cache.read_through import IdOf, ReadThroughCache, default_id_of
from cqrs_mongo.cache.resilient_cache import CacheStats, ResilientCache
from cqrs_mongo.errors import ConcurrencyError
from cqrs_mongo.persistence.dispatcher import IPersistenceDispatcher
from cqrs_mongo.persistence.hooks import Hooks
from cqrs_mongo.persistence.search_result import SearchResult

T = TypeVar("T")

DEFAULT_TTL = 300.0
DEFAULT_UNKNOWN_COMMIT_HOLD = 60.0


class CachingPersistenceDispatcher:
    """Adds a read-through cache with after-commit invalidation to any dispatcher.

    Args:
        inner: the dispatcher that talks to the database.
        cache_service: where entries live (``RedisCacheService``, ``InMemoryCacheService``).
        default_ttl: seconds an entry lives; ``None`` for no expiry.
        ttls: per-type overrides of ``default_ttl``; ``0`` turns caching off for a type.
        invalidates: extra types whose entries with the same id a write of a type invalidates
            (e.g. ``{Order: [OrderSummary]}`` when the summary shares the order's id).
        namespace: the first part of every key, to keep applications apart.
        cache_absent: remember ids the database does not have (until a write of that id).
        id_of: reads an item's id (default: its ``id`` attribute); an item whose id cannot be
            mapped back to the ids asked for makes its type uncached, with a warning.
        cache_timeout: upper bound, in seconds, of any single cache call.
        breaker_cooldown: seconds the cache is skipped after a failure before a probe.
        unknown_commit_hold: seconds an entity whose commit outcome is unknown is neither
            served from nor stored in the cache (longer than a commit can take to land).
        hooks: receives ``cache.read`` spans and outage events.

    Raises:
        ValueError: a TTL is negative, ``unknown_commit_hold`` is not positive, or
            ``namespace`` is empty or contains ``:``.

    Example:
        >>> from cqrs_mongo.cache import InMemoryCacheService
        >>> def make(inner: IPersistenceDispatcher) -> CachingPersistenceDispatcher:
        ...     return CachingPersistenceDispatcher(
        ...         inner=inner, cache_service=InMemoryCacheService(), default_ttl=300
        ...     )
    """

    def __init__(
        self,
        inner: IPersistenceDispatcher,
        cache_service: ICacheService,
        default_ttl: float | None = DEFAULT_TTL,
        *,
        ttls: Mapping[type[Any], float | None] | None = None,
        invalidates: Mapping[type[Any], Sequence[type[Any]]] | None = None,
        namespace: str = "cqrs",
        cache_absent: bool = True,
        id_of: IdOf = default_id_of,
        cache_timeout: float = 1.0,
        breaker_cooldown: float = 5.0,
        unknown_commit_hold: float = DEFAULT_UNKNOWN_COMMIT_HOLD,
        hooks: Hooks | None = None,
    ) -> None:
        for name, ttl in [
            ("default_ttl", default_ttl),
            *((t.__qualname__, v) for t, v in (ttls or {}).items()),
        ]:
            if ttl is not None and ttl < 0:
                raise ValueError(f"TTL for {name} must be >= 0 seconds or None, got {ttl!r}.")
        if not unknown_commit_hold > 0:
            raise ValueError(
                f"unknown_commit_hold must be > 0 seconds, got {unknown_commit_hold!r}."
            )
        self.inner = inner
        self.default_ttl = default_ttl
        self.unknown_commit_hold = unknown_commit_hold
        self.hooks = hooks if hooks is not None else Hooks()
        self._ttls = dict(ttls or {})
        self._invalidates = {k: tuple(v) for k, v in (invalidates or {}).items()}
        breaker = CircuitBreaker(cooldown=breaker_cooldown)
        self.cache = ResilientCache(
            cache_service, timeout=cache_timeout, breaker=breaker, hooks=self.hooks
        )
        # Units this wrapper has written in, for handlers that never call uow.record_write().
        self._written: WeakSet[Any] = WeakSet()
        self._reads = ReadThroughCache(
            self.cache, CacheKeys(namespace), self.ttl_of, cache_absent=cache_absent, id_of=id_of
        )

    @property
    def stats(self) -> CacheStats:
        """Hit, miss, bypass, failure and outage counters, for metrics."""
        return self.cache.stats

    @property
    def settled(self) -> bool:
        """Whether nothing is owed to the cache: no epoch bump, no invalidation pending.

        After an outage this turns true once the cache has taken what failed meanwhile;
        retries run in the background every ``breaker_cooldown`` seconds until then.
        """
        return self._reads.settled

    async def aclose(self) -> None:
        """Stop background retries (call it when the application shuts down)."""
        await self._reads.aclose()

    def ttl_of(self, target: type[Any]) -> float | None:
        """Seconds entries of ``target`` live (``0``: not cached; ``None``: no expiry)."""
        return self._ttls.get(target, self.default_ttl)

    # --- command side ----------------------------------------------------------------------

    async def apply(self, entity: Any, uow: Any = None, events: list[Any] | None = None) -> Any:
        """Persist ``entity`` through the inner dispatcher and invalidate its cache entries.

        Invalidation happens after ``uow`` commits (never if it rolls back, unless it runs
        without a transaction, whose writes a rollback cannot undo), or at once when ``uow``
        is ``None``, since the inner dispatcher committed its own unit before returning.
        When the commit's outcome is not known (an unknown result, a write-concern error, a
        cancellation or timeout of the caller while the commit was in flight), the entries are
        invalidated before the error propagates and *held* for ``unknown_commit_hold`` seconds:
        no process serves or stores them meanwhile, since the commit may still land.

        Raises:
            Exception: whatever the inner dispatcher raises.
        """
        targets = (type(entity), *self._invalidates.get(type(entity), ()))
        try:
            entity_id = await self.inner.apply(entity, uow=uow, events=events)
        except BaseException as exc:
            if uow is None and _may_have_committed(exc):
                # The inner dispatcher's own unit may have sent its commit before failing.
                ids = _distinct([getattr(entity, "id", None)])
                await _uninterrupted(self._hold(targets, ids))
            raise
        ids = _distinct([entity_id, getattr(entity, "id", None)])

        async def invalidate() -> None:
            await _uninterrupted(self._reads.invalidate(targets, ids))

        async def hold() -> None:
            await _uninterrupted(self._hold(targets, ids))

        on_commit = getattr(uow, "on_commit", None)
        if uow is not None and callable(on_commit):
            self._remember_write(uow)
            on_commit(invalidate)
            on_commit_unknown = getattr(uow, "on_commit_unknown", None)
            if callable(on_commit_unknown):
                on_commit_unknown(hold)
            if getattr(uow, "in_transaction", None) is False:
                # No transaction (mongomock, a standalone server): the write applied at once
                # and a rollback does not undo it.
                uow.on_rollback(invalidate)
        else:
            await invalidate()
        return entity_id

    async def _hold(self, targets: Sequence[type[Any]], ids: list[Any]) -> None:
        await self._reads.invalidate(targets, ids, hold=self.unknown_commit_hold)

    async def invalidate(self, result_type: type[Any], ids: Iterable[Any]) -> None:
        """Make every cached entry of ``result_type`` with these ids unservable.

        For writers that do not go through :meth:`apply`, such as projection workers: call it
        after their own commit. Never raises; an invalidation the cache cannot take now is
        retried, and reads bypass the cache until it succeeds.
        """
        await self._reads.invalidate((result_type,), _by_token(ids))

    def projection_invalidator(
        self, read_models: Mapping[str, type[Any] | Sequence[type[Any]]]
    ) -> Callable[[Mapping[str, Set[Any]]], Awaitable[None]]:
        """A projection worker's after-commit callback that invalidates the read models it wrote.

        The callback takes what a batch changed once it has committed, the document ids keyed
        by collection name (``MongoProjectionWorker(..., after_commit=[callback])``), and
        invalidates those ids of the types ``read_models`` names for each collection.
        Collections not named (checkpoints, other projections' tables) are left alone.

        Args:
            read_models: collection name -> the cached type (or types) read from it, e.g.
                ``{"order_summaries": OrderSummaryDTO}``.

        Raises:
            TypeError: a value of ``read_models`` is not a type or a sequence of types.

        Example:
            >>> invalidate = cached.projection_invalidator({"order_summaries": OrderSummaryDTO})
            ... # doctest: +SKIP
        """
        targets: dict[str, tuple[type[Any], ...]] = {}
        for collection, types in read_models.items():
            named = (types,) if isinstance(types, type) else tuple(types)
            if not named or not all(isinstance(t, type) for t in named):
                raise TypeError(
                    f"projection_invalidator: collection {collection!r} must map to a type or "
                    f"a sequence of types, got {types!r}."
                )
            targets[collection] = named

        async def invalidate_changes(changes: Mapping[str, Set[Any]]) -> None:
            for collection, ids in changes.items():
                wanted = targets.get(collection)
                if wanted and ids:
                    await self._reads.invalidate(wanted, _by_token(ids))

        return invalidate_changes

    async def fetch_domain(
        self, entity_type: type[T], ids: Sequence[Any], uow: Any = None
    ) -> list[T]:
        """Load aggregates by id, from the cache where it may answer, in the order asked.

        Raises:
            Exception: whatever the inner dispatcher raises (e.g. for a single string id).
        """
        if not _is_id_list(ids):
            return await self.inner.fetch_domain(entity_type, ids, uow=uow)

        async def load(wanted: list[Any], unit: Any) -> Sequence[Any]:
            return await self.inner.fetch_domain(entity_type, wanted, uow=unit)

        return await self._read("domain", entity_type, list(ids), uow, load)

    # --- query side ------------------------------------------------------------------------

    async def fetch(self, result_type: type[T], criteria: Any, uow: Any = None) -> SearchResult[T]:
        """Read models by ids (cached) or by specification / ``QueryOptions`` (passed through).

        As with the inner dispatcher, nothing runs until the result is awaited or streamed;
        streaming reads the ids through the cache a batch at a time.

        Raises:
            Exception: whatever the inner dispatcher raises for criteria it refuses.
        """
        if not _is_id_list(criteria):
            return await self.inner.fetch(result_type, criteria, uow=uow)
        ids = list(criteria)

        async def load_ids(wanted: list[Any], unit: Any) -> Sequence[Any]:
            return await (await self.inner.fetch(result_type, wanted, uow=unit))

        async def load() -> list[T]:
            return await self._read("query", result_type, ids, uow, load_ids)

        async def stream(batch_size: int) -> AsyncIterator[T]:
            for start in range(0, len(ids), batch_size):
                chunk = ids[start : start + batch_size]
                for item in await self._read("query", result_type, chunk, uow, load_ids):
                    yield item

        async def count() -> int:
            return len(await load())

        return SearchResult(load, stream=stream, count=count)

    # --- internals -------------------------------------------------------------------------

    async def _read(
        self,
        kind: Kind,
        target: type[Any],
        ids: list[Any],
        uow: Any,
        load: Callable[[list[Any], Any], Awaitable[Sequence[Any]]],
    ) -> list[Any]:
        if not ids or self.ttl_of(target) == 0:
            return list(await load(ids, uow))
        if uow is not None and (self._has_written(uow) or not _is_open(uow)):
            self.cache.stats.bypassed += 1
            return list(await load(ids, uow))
        # Misses are read where the latest committed state is read (see the module docstring).
        unit = uow if uow is None or _reads_latest(uow) else None

        async def load_here(wanted: list[Any]) -> Sequence[Any]:
            return await load(wanted, uow)

        async def load_misses(wanted: list[Any]) -> Sequence[Any]:
            return await load(wanted, unit)

        async with self.hooks.span("cache.read", target, ids, detail={"kind": kind}) as detail:
            items, hits, misses = await self._reads.read(
                kind, target, ids, load_here, load_misses=load_misses
            )
            detail.update(hits=hits, misses=misses)
            return items

    def _remember_write(self, uow: Any) -> None:
        # A unit that cannot be weakly referenced relies on its has_written flag alone.
        with contextlib.suppress(TypeError):
            self._written.add(uow)

    def _has_written(self, uow: Any) -> bool:
        if getattr(uow, "has_written", False):
            return True
        try:
            return uow in self._written
        except TypeError:
            return False


def _is_id_list(criteria: Any) -> bool:
    """Whether ``criteria`` is ids (a list, tuple or set), as opposed to a query or a str."""
    if isinstance(criteria, (str, bytes)):
        return False
    return isinstance(criteria, (Sequence, Set))


def _may_have_committed(exc: BaseException) -> bool:
    """Whether an ``apply`` that raised ``exc`` may have committed (a conflict never did)."""
    return not isinstance(exc, ConcurrencyError)


async def _uninterrupted(invalidation: Awaitable[None]) -> None:
    """Await ``invalidation`` to its end even if the caller is cancelled meanwhile.

    A cancellation that arrives while an invalidation is being written would otherwise leave
    a committed write's old entries servable; it is re-raised once the invalidation is done
    (the invalidation itself is bounded by the cache timeout).
    """
    task = asyncio.ensure_future(invalidation)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


def _is_open(uow: Any) -> bool:
    return bool(getattr(uow, "is_active", True))


def _reads_latest(uow: Any) -> bool:
    """Whether ``uow`` reads the latest committed state (no snapshot that could be older)."""
    return bool(getattr(uow, "read_only", False)) or getattr(uow, "in_transaction", None) is False


def _by_token(ids: Iterable[Any]) -> list[Any]:
    """``ids`` without repeats (as keys see them: ``1`` and ``"1"`` stay apart) or ``None``."""
    return list({id_token(i): i for i in ids if i is not None}.values())


def _distinct(ids: Sequence[Any]) -> list[Any]:
    seen: list[Any] = []
    for entity_id in ids:
        if entity_id is not None and entity_id not in seen:
            seen.append(entity_id)
    return seen
