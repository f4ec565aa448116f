"""ICacheService: the port every cache backend implements (Redis, in-memory)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class ICacheService(Protocol):
    """A byte-oriented key/value cache with per-write time-to-live.

    Keys are strings, values are bytes; encoding values is the caller's business. ``ttl`` is in
    seconds: ``None`` means "no expiry". Backends raise :class:`~cqrs_mongo.errors.CacheError`
    (chained to the backend's own error) when they cannot answer; callers that can live
    without a cache treat that as a miss.
    """

    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or ``None`` when absent or expired."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values under ``keys``, position by position (``None`` where absent), in one trip."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key``, replacing any value, expiring after ``ttl`` seconds."""
        ...

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store every item, each expiring after ``ttl`` seconds, in one trip."""
        ...

    async def get_or_set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> list[bytes]:
        """Store each item whose key is absent; return what each key holds afterwards.

        Each key is handled atomically (a concurrent writer's value wins if it came first),
        and the answer is in the order of ``items``. Used for per-key generation tokens.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; removing an absent key is not an error."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Remove every key in ``keys``, in one trip."""
        ...
