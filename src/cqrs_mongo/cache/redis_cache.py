"""RedisCacheService: ICacheService on ``redis.asyncio``; one MGET per read, pipelined writes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import RedisError
from redis.utils import HIREDIS_AVAILABLE

from cqrs_mongo.errors import CacheError

logger = logging.getLogger("cqrs_mongo.cache")

T = TypeVar("T")

DEFAULT_SOCKET_TIMEOUT = 0.2
DEFAULT_CONNECT_TIMEOUT = 0.2
DEFAULT_MAX_CONNECTIONS = 64


class RedisCacheService:
    """An :class:`~cqrs_mongo.cache.ports.ICacheService` over a ``redis.asyncio.Redis`` client.

    Reads of many keys are one ``MGET``; writes of many keys are one pipeline (no ``MULTI``)
    of ``SET ... PX``; deletes are one ``DEL``. Every Redis or socket failure is raised as
    :class:`~cqrs_mongo.errors.CacheError`, so callers see one error type.

    Build it with :meth:`from_url` to get the settings a cache needs: short socket timeouts
    (a cache that answers slowly is worse than none), a bounded connection pool, at most one
    immediate retry (the default client retries ten times with backoff, which turns an outage
    into seconds of waiting), and, when the ``hiredis`` package is installed (see
    :attr:`uses_hiredis`), hiredis both to parse replies (``redis`` does that by itself) and to
    pack commands (the asyncio client packs in pure Python, which costs more CPU than the rest
    of a cached read: one ``MGET`` carries an entry and a generation key per id).

    Example:
        >>> cache = RedisCacheService.from_url("redis://127.0.0.1:6379/0")
        >>> cache.uses_hiredis in (True, False)
        True
    """

    def __init__(self, client: Redis, *, owns_client: bool = False) -> None:
        self._client = client
        self._owns_client = owns_client
        # A client that decodes replies hands back str, which callers must get as bytes.
        self._decodes = bool(getattr(_encoder(client), "decode_responses", True))

    @classmethod
    def from_url(
        cls,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        socket_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        retries: int = 1,
        **client_options: Any,
    ) -> RedisCacheService:
        """A service with its own connection pool to ``url``; close it with :meth:`aclose`.

        Args:
            url: a ``redis://`` or ``rediss://`` URL.
            socket_timeout: seconds to wait for a reply before giving up.
            socket_connect_timeout: seconds to wait for a TCP connection.
            max_connections: size of the connection pool.
            retries: immediate retries after a connection error (a pooled connection to a
                restarted server fails once before a fresh one succeeds).
            **client_options: passed on to ``redis.asyncio.Redis.from_url``.

        Raises:
            ValueError: ``url`` is not a Redis URL.
        """
        client = Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
            retry=Retry(NoBackoff(), retries),
            decode_responses=False,
            **client_options,
        )
        pool = client.connection_pool
        # hiredis packs text as UTF-8 whatever encoding the client was given, and a connection
        # class of the caller's that packs commands its own way keeps doing so.
        if (
            HIREDIS_AVAILABLE
            and _encoder(client).encoding.lower() in ("utf-8", "utf8")
            and pool.connection_class.pack_command is AbstractConnection.pack_command
        ):
            pool.connection_class = _hiredis_packing(pool.connection_class)
        return cls(client, owns_client=True)

    @property
    def client(self) -> Redis:
        """The underlying ``redis.asyncio.Redis`` client."""
        return self._client

    @property
    def uses_hiredis(self) -> bool:
        """Whether replies are parsed by hiredis (C) rather than pure Python."""
        return HIREDIS_AVAILABLE

    async def aclose(self) -> None:
        """Close the client and its pool if this service created them."""
        if self._owns_client:
            await self._client.aclose()

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or ``None``.

        Raises:
            CacheError: Redis failed or timed out.
        """
        value = await self._run("GET", lambda: self._client.get(key))
        return _as_bytes(value)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values under ``keys`` in one ``MGET``, in order.

        Raises:
            CacheError: Redis failed or timed out.
        """
        if not keys:
            return []
        values: list[Any] = await self._run("MGET", lambda: self._client.mget(list(keys)))
        if self._decodes:
            return [_as_bytes(value) for value in values]
        return values

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """``SET key value PX ttl``.

        Raises:
            CacheError: Redis failed or timed out.
        """
        await self._run("SET", lambda: self._client.set(key, value, px=_millis(ttl)))

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        """One pipeline of ``SET key value PX ttl``.

        Raises:
            CacheError: Redis failed or timed out.
        """
        if not items:
            return
        px = _millis(ttl)

        async def write() -> list[Any]:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, px=px)
                return await pipe.execute()

        await self._run("SET (pipeline)", write)

    async def get_or_set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> list[bytes]:
        """One pipeline of ``SET key value NX GET PX ttl`` (Redis 7.0 or later).

        Raises:
            CacheError: Redis failed, timed out, or is older than 7.0.
        """
        if not items:
            return []
        px = _millis(ttl)

        async def write() -> list[Any]:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, value, px=px, nx=True, get=True)
                return await pipe.execute()

        previous = await self._run("SET NX GET (pipeline)", write)
        held: list[bytes] = []
        for value, old in zip(items.values(), previous, strict=True):
            # A nil reply means the key was absent, so our value is the one stored now.
            held.append(value if old is None else _required_bytes(old))
        return held

    async def delete(self, key: str) -> None:
        """``DEL key``.

        Raises:
            CacheError: Redis failed or timed out.
        """
        await self._run("DEL", lambda: self._client.delete(key))

    async def delete_many(self, keys: Sequence[str]) -> None:
        """One ``DEL`` of every key.

        Raises:
            CacheError: Redis failed or timed out.
        """
        if keys:
            await self._run("DEL", lambda: self._client.delete(*keys))

    async def _run(self, command: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except (RedisError, OSError, TimeoutError) as exc:
            raise CacheError(f"Redis {command} failed: {exc!r}.") from exc


_packers: dict[type[Any], type[Any]] = {}


def _hiredis_packing(connection_class: type[Any]) -> type[Any]:
    """``connection_class`` packing commands with hiredis, as redis's synchronous client does.

    Same wire bytes as the pure-Python packer; a subclass (not a replacement) so the TCP, TLS
    or Unix-socket class the URL chose keeps all its behaviour.
    """
    packing = _packers.get(connection_class)
    if packing is None:
        # Typed as Any: some redis releases ship this class without annotations.
        serializer: Any = HiredisRespSerializer
        packer = serializer()

        def pack_command(self: Any, *args: Any) -> list[bytes]:
            name = args[0]
            # One-word commands of str, bytes and numbers go straight to hiredis; the rest
            # (``CONFIG GET``, buffers, refused types) take redis's own hiredis packer.
            if isinstance(name, str) and " " not in name:
                try:
                    return [hiredis.pack_command(args)]
                except TypeError:
                    pass
            packed: list[bytes] = packer.pack(*args)
            return packed

        name = f"HiredisPacking{connection_class.__name__}"
        packing = type(name, (connection_class,), {"pack_command": pack_command})
        _packers[connection_class] = packing
    return packing


def _encoder(client: Redis) -> Any:
    """The client's encoder (its ``encoding`` and ``decode_responses`` settings)."""
    client_any: Any = client
    return client_any.get_encoder()


def _millis(ttl: float | None) -> int | None:
    if ttl is None:
        return None
    if ttl <= 0:
        raise ValueError(f"Cache ttl must be positive seconds or None, got {ttl!r}.")
    return max(1, round(ttl * 1000))


def _as_bytes(value: object) -> bytes | None:
    if value is None:
        return None
    return _required_bytes(value)


def _required_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):  # a client built with decode_responses=True
        return value.encode()
    raise CacheError(f"Redis returned {type(value).__name__}, expected bytes.")
