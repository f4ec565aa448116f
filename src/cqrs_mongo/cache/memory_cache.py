"""InMemoryCacheService: a process-local ICacheService for unit tests and single-process apps."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence


class InMemoryCacheService:
    """A dict with expiry times; implements :class:`~cqrs_mongo.cache.ports.ICacheService`.

    Expired entries are dropped when read. ``clock`` (seconds, monotonic) is injectable so tests
    can move time forward without sleeping.

    Example:
        >>> import asyncio
        >>> cache = InMemoryCacheService()
        >>> asyncio.run(cache.set("k", b"v", ttl=60))
        >>> asyncio.run(cache.get("k"))
        b'v'
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[bytes, float | None]] = {}

    def __len__(self) -> int:
        now = self._clock()
        return sum(1 for _, expires in self._entries.values() if not _expired(expires, now))

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or ``None``."""
        return self._read(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values under ``keys``, in order."""
        return [self._read(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (``None``: forever).

        Raises:
            TypeError: ``value`` is not bytes.
        """
        self._write(key, value, ttl)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """Store every item for ``ttl`` seconds.

        Raises:
            TypeError: a value is not bytes.
        """
        for key, value in items.items():
            self._write(key, value, ttl)

    async def get_or_set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> list[bytes]:
        """Store each item whose key is absent; return what each key holds afterwards.

        Raises:
            TypeError: a value is not bytes.
        """
        held: list[bytes] = []
        for key, value in items.items():
            current = self._read(key)
            if current is None:
                self._write(key, value, ttl)
                current = value
            held.append(current)
        return held

    async def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        self._entries.pop(key, None)

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Remove every key in ``keys``."""
        for key in keys:
            self._entries.pop(key, None)

    def _read(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if _expired(expires, self._clock()):
            del self._entries[key]
            return None
        return value

    def _write(self, key: str, value: bytes, ttl: float | None) -> None:
        if not isinstance(value, bytes):
            raise TypeError(f"Cache value for {key!r} must be bytes, got {type(value).__name__}.")
        expires = None if ttl is None else self._clock() + ttl
        self._entries[key] = (value, expires)


def _expired(expires: float | None, now: float) -> bool:
    return expires is not None and now >= expires
