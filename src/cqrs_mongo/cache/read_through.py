"""ReadThroughCache: generation-checked read-through and invalidation over an ICacheService.

Why generations. The classic race of a read-through cache: a reader misses, loads the old value
from the database, and is slow to store it; meanwhile a writer commits and deletes the key; the
reader then stores the old value, which is served until it expires. Here it cannot happen:

1. Every (type, id) has a *generation key* holding a random token. An invalidation (run after
   the writer's commit) overwrites it with a fresh token; tokens are never reused, so an
   expired and re-created generation key never matches an old token either.
2. A reader fetches the entry and the generation key in the same ``MGET``. On a miss it uses
   that generation (creating one with ``SET NX GET`` when absent) *before* reading the database,
   and stores the entry stamped with it.
3. An entry is served only while its stamp equals the key's current generation (and the
   namespace epoch, see :mod:`cqrs_mongo.cache.owed`: a new epoch makes every entry stale).

So in the interleaving above the reader stored an entry stamped with the generation the writer
has since replaced: every later read sees the mismatch, treats it as a miss and reloads. If the
writer's invalidation came before the reader's ``MGET`` instead, the reader's database read
started after the commit and returns the new value. Deleting entries on invalidation only frees
memory; correctness rests on the stamps. Entries and generation keys both expire (generation
keys live longer), so nothing grows without bound.

A *hold* is a generation under which nothing is stored: an invalidation for a commit whose
outcome is unknown writes one that expires after a while, since a read made before that commit
lands could otherwise be stored under a fresh generation and outlive it.

Concurrent misses of one key in one process share one database read (:class:`SingleFlight`).
Entries that do not decode (garbage, another package version) are misses, and are deleted.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cqrs_mongo.cache.keys import KINDS, CacheKeys, Kind, id_token
from cqrs_mongo.cache.owed import OwedInvalidations, is_hold, new_generation
from cqrs_mongo.cache.resilient_cache import UNAVAILABLE, ResilientCache
from cqrs_mongo.cache.serialization import (
    MAGIC,
    PRESENT,
    SEPARATOR,
    CacheDecodeError,
    ModelCodec,
    codec_for,
    decode_entry,
    encode_entry,
)
from cqrs_mongo.cache.single_flight import SingleFlight

logger = logging.getLogger("cqrs_mongo.cache")

Loader = Callable[[list[Any]], Awaitable[Sequence[Any]]]
IdOf = Callable[[Any], Any]


class Absent(enum.Enum):
    """Marks an id the database does not have (cached so repeated asks cost no query)."""

    ABSENT = "absent"


ABSENT = Absent.ABSENT
_NO_ID = object()


def default_id_of(item: Any) -> Any:
    """An item's ``id`` attribute (aggregates and most read models have one)."""
    return getattr(item, "id", _NO_ID)


def generation_ttl(ttl: float | None) -> float | None:
    """How long a generation key lives: well past the entries stamped with it."""
    return None if ttl is None else ttl * 2 + 60


@dataclass(slots=True)
class _Lookup:
    found: dict[str, Any] = field(default_factory=dict)
    generations: dict[str, bytes | None] = field(default_factory=dict)
    epoch: bytes | None = None


def stamp(epoch: bytes, generation: bytes) -> bytes:
    """What an entry is stamped with: the namespace epoch and the id's generation."""
    return epoch + b"~" + generation


class _Unmatched(Exception):
    """The store returned items whose ids do not map back to the ids asked for."""


class ReadThroughCache:
    """Reads values by id through a cache, and invalidates them by id.

    Args:
        cache: the guarded cache service (failures come back as ``UNAVAILABLE``).
        keys: the key layout (namespace).
        ttl_of: the time-to-live of a type's entries (``None``: no expiry).
        cache_absent: whether ids the store lacks are remembered (until invalidated).
        id_of: reads an item's id, to map the store's answer back to the ids asked for.
    """

    def __init__(
        self,
        cache: ResilientCache,
        keys: CacheKeys,
        ttl_of: Callable[[type[Any]], float | None],
        *,
        cache_absent: bool = True,
        id_of: IdOf = default_id_of,
    ) -> None:
        self.cache = cache
        self.keys = keys
        self._ttl_of = ttl_of
        self._cache_absent = cache_absent
        self._id_of = id_of
        self._flights: SingleFlight[bytes | None] = SingleFlight()
        self._unmatched: set[type[Any]] = set()
        self.owed = OwedInvalidations(cache, keys)

    @property
    def pending_invalidations(self) -> int:
        """Generation bumps that failed and wait for the cache to come back."""
        return self.owed.pending

    @property
    def settled(self) -> bool:
        """Whether nothing is owed to the cache (no epoch bump, no generation bump pending)."""
        return self.owed.settled

    async def aclose(self) -> None:
        """Stop the background retries of what is owed."""
        await self.owed.aclose()

    async def read(
        self,
        kind: Kind,
        target: type[Any],
        ids: Sequence[Any],
        load: Loader,
        *,
        load_misses: Loader | None = None,
    ) -> tuple[list[Any], int, int]:
        """The items for ``ids`` in the order asked (missing, repeated ids skipped), hits, misses.

        Args:
            kind: ``domain`` or ``query``.
            target: the entity or result type.
            ids: the ids asked for.
            load: reads the given ids from the database, in order, skipping missing ones; used
                for every id when the cache cannot be used.
            load_misses: reads the misses that are stored; it must read the latest committed
                state and start after it is called (default: ``load``).

        Raises:
            Exception: whatever ``load`` raises; cache failures never propagate.
        """
        # Strings are their own token; the call is only for other id types.
        wanted = {(i if type(i) is str else id_token(i)): i for i in ids}
        if target in self._unmatched or not await self.owed.pay():
            return list(await load(list(ids))), 0, len(wanted)
        lookup = await self._lookup(kind, target, wanted)
        if lookup is None:
            return list(await load(list(ids))), 0, len(wanted)
        found = lookup.found
        missing = (
            {token: wanted[token] for token in wanted if token not in found}
            if len(found) < len(wanted)
            else {}
        )
        try:
            if missing:
                fill = load if load_misses is None else load_misses
                found.update(await self._fill(kind, target, missing, lookup, fill))
        except _Unmatched:
            return list(await load(list(ids))), 0, len(wanted)
        hits = len(wanted) - len(missing)
        self.cache.stats.hits += hits
        self.cache.stats.misses += len(missing)
        # Duplicate ids collapse to their first occurrence, as the Mongo handlers do. A full
        # hit found the ids in the order asked; filled misses were added after the hits.
        ordered = found.values() if not missing else (found.get(t, ABSENT) for t in wanted)
        return [item for item in ordered if item is not ABSENT], hits, len(missing)

    async def invalidate(
        self, targets: Iterable[type[Any]], ids: Sequence[Any], *, hold: float | None = None
    ) -> None:
        """Give each (type, id) a new generation, so no entry read before now is served again.

        A bump the cache cannot take is kept and retried before the next read; until it
        succeeds, reads bypass the cache (an entry it should have invalidated may be there).

        Args:
            targets: the types whose entries are invalidated.
            ids: the ids invalidated.
            hold: for a commit whose outcome is unknown (it may still land): for this many
                seconds the new generation is a *hold*, so no process serves or stores an
                entry of these ids; a read in that window may see the state before a commit
                that lands later, and must not leave it cached. Then the key expires and the
                next read creates a fresh generation.
        """
        for target in targets:
            ttl = generation_ttl(self._ttl_of(target)) if hold is None else hold
            for entity_id in ids:
                self.owed.add(self.keys.generation(target, entity_id), ttl, hold=hold is not None)
            self.cache.stats.invalidations += len(ids)
            if not await self.owed.pay():
                continue
            schema = codec_for(target).schema_version
            stale = [self.keys.entry(k, target, schema, i) for k in KINDS for i in ids]
            # Only frees memory: the new generation already makes these entries unservable.
            await self._delete(stale, target, ids)

    # --- internals ---------------------------------------------------------------------------

    async def _delete(self, keys: list[str], target: type[Any], ids: Sequence[Any]) -> None:
        await self.cache.call("delete_many", lambda s: s.delete_many(keys), target, ids)

    async def _lookup(
        self, kind: Kind, target: type[Any], wanted: Mapping[str, Any]
    ) -> _Lookup | None:
        codec = codec_for(target)
        tokens = list(wanted)
        count = len(tokens)
        # Entry keys first, then the generation keys of the same ids, in one MGET.
        entry_prefix = self.keys.entry_prefix(kind, target, codec.schema_version)
        keys = [entry_prefix + token for token in tokens]
        generation_prefix = self.keys.generation_prefix(target)
        keys.extend([generation_prefix + token for token in tokens])
        keys.append(self.keys.epoch())  # and the namespace epoch, last
        ids = list(wanted.values())
        raw = await self.cache.call("get_many", lambda s: s.get_many(keys), target, ids)
        if raw is UNAVAILABLE:
            self.owed.failed()
            return None
        lookup = _Lookup(epoch=raw[-1])
        epoch = lookup.epoch
        generations = raw[count:-1]
        found = lookup.found
        garbage: list[str] = []
        validate = codec.validate_json
        for token, entry, current in zip(tokens, raw[:count], generations, strict=True):
            if entry is None:
                continue
            generation = None if epoch is None or current is None else stamp(epoch, current)
            # The common case, a value stamped with the current generation, read in place;
            # the envelope is split as decode_entry splits it, so both agree on what is valid.
            parts = entry.split(SEPARATOR, 2)
            if len(parts) == 3 and parts[1] == generation and generation and parts[0] == MAGIC:
                body = parts[2]
                if body[:1] == PRESENT:
                    try:
                        found[token] = validate(body[1:])
                    except ValueError:  # pydantic's ValidationError is a ValueError
                        garbage.append(entry_prefix + token)
                    continue
            try:
                value = self._decode(codec, entry, generation)
            except CacheDecodeError:
                garbage.append(entry_prefix + token)
                continue
            if value is not None:
                found[token] = value
        if len(found) < count:  # only a miss needs the generations, to stamp what it stores
            lookup.generations = dict(zip(tokens, generations, strict=True))
        if garbage:
            self.cache.stats.garbage += len(garbage)
            logger.debug("Deleting %d undecodable cache entries: %s", len(garbage), garbage)
            await self._delete(garbage, target, ids)
        return lookup

    @staticmethod
    def _decode(codec: ModelCodec[Any], raw: bytes, generation: bytes | None) -> Any:
        """The cached value, ``ABSENT``, or ``None`` when the entry's generation is outdated.

        Raises:
            CacheDecodeError: ``raw`` is not an envelope, or its JSON does not validate.
        """
        entry = decode_entry(raw)
        if generation is None or entry.generation != generation:
            return None
        return ABSENT if entry.payload is None else codec.load(entry.payload)

    async def _fill(
        self,
        kind: Kind,
        target: type[Any],
        missing: dict[str, Any],
        lookup: _Lookup,
        load: Loader,
    ) -> dict[str, Any]:
        codec = codec_for(target)
        by_key = {
            self.keys.entry(kind, target, codec.schema_version, i): t for t, i in missing.items()
        }
        mine, theirs = self._flights.claim(by_key)
        payloads: dict[str, bytes | None] = {}
        found: dict[str, Any] = {}
        try:
            if mine:
                own = {by_key[key]: missing[by_key[key]] for key in mine}
                found, encoded = await self._load_and_store(kind, target, own, lookup, load)
                payloads = {key: encoded[by_key[key]] for key in mine if by_key[key] in encoded}
        finally:
            self._flights.land(mine, payloads)
        landed = await self._flights.wait(theirs)
        for key, payload in landed.items():
            found[by_key[key]] = ABSENT if payload is None else codec.load(payload)
        failed = {by_key[key]: missing[by_key[key]] for key in theirs if key not in landed}
        if failed:
            found.update(self._match(target, failed, await load(list(failed.values()))))
        return found

    async def _load_and_store(
        self,
        kind: Kind,
        target: type[Any],
        wanted: dict[str, Any],
        lookup: _Lookup,
        load: Loader,
    ) -> tuple[dict[str, Any], dict[str, bytes | None]]:
        """Load ``wanted`` from the store; store it stamped with generations read before."""
        codec = codec_for(target)
        ttl = self._ttl_of(target)
        stamps = await self._stamps(target, wanted, lookup)
        found = self._match(target, wanted, await load(list(wanted.values())))
        encoded = {t: None if v is ABSENT else codec.dump(v) for t, v in found.items()}
        if stamps is not None:
            schema = codec.schema_version
            entries = {
                self.keys.entry(kind, target, schema, wanted[t]): encode_entry(stamps[t], p)
                for t, p in encoded.items()
                if (p is not None or self._cache_absent) and t in stamps
            }
            if entries:
                await self.cache.call("set_many", lambda s: s.set_many(entries, ttl), target)
        return found, encoded

    async def _stamps(
        self, target: type[Any], wanted: Mapping[str, Any], lookup: _Lookup
    ) -> dict[str, bytes] | None:
        """What to stamp each wanted id's entry with, read before the database is.

        Missing generation keys (and a missing epoch) are created; ids under a hold are left
        out, so nothing is stored for them.
        """
        known = {t: g for t in wanted if (g := lookup.generations.get(t)) is not None}
        absent = [token for token in wanted if token not in known]
        epoch = lookup.epoch if lookup.epoch is not None else await self._create_epoch()
        if epoch is None:
            return None
        if absent:
            fresh = {self.keys.generation(target, wanted[t]): new_generation() for t in absent}
            ttl = generation_ttl(self._ttl_of(target))
            held = await self.cache.call(
                "get_or_set_many", lambda s: s.get_or_set_many(fresh, ttl), target
            )
            if held is UNAVAILABLE:
                return None
            known.update(zip(absent, held, strict=True))
        return {t: stamp(epoch, g) for t, g in known.items() if not is_hold(g)}

    async def _create_epoch(self) -> bytes | None:
        """The namespace epoch, created if absent (it has no TTL; eviction only renews it)."""
        created = {self.keys.epoch(): new_generation()}
        held = await self.cache.call("get_or_set_many", lambda s: s.get_or_set_many(created, None))
        return None if held is UNAVAILABLE else held[0]

    def _match(
        self, target: type[Any], wanted: Mapping[str, Any], items: Sequence[Any]
    ) -> dict[str, Any]:
        """Map the store's items back to the ids asked for; ids it did not return are ABSENT."""
        found: dict[str, Any] = dict.fromkeys(wanted, ABSENT)
        for item in items:
            item_id = self._id_of(item)
            token = None if item_id is _NO_ID else id_token(item_id)
            if token is None or token not in wanted:
                self._unmatched.add(target)
                logger.warning(
                    "Not caching %s: item id %r is not among the ids asked for; "
                    "pass id_of= to the caching dispatcher to say where its id is.",
                    target.__qualname__,
                    None if item_id is _NO_ID else item_id,
                )
                raise _Unmatched(target.__qualname__)
            found[token] = item
        return found
