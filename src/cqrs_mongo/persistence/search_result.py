"""SearchResult: a lazy query result, awaited to a list or streamed batch by batch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T", covariant=True)
U = TypeVar("U")

Loader = Callable[[], Awaitable[list[U]]]
Streamer = Callable[[int], AsyncIterator[U]]
Counter = Callable[[], Awaitable[int]]
FirstLoader = Callable[[], Awaitable[U | None]]

DEFAULT_BATCH_SIZE = 100


class SearchResult(Generic[T]):
    """The result of ``fetch``: nothing runs until it is awaited, streamed or counted.

    ``await result`` runs the query and returns a list (each await runs it again).
    ``result.stream(batch_size=n)`` iterates a server cursor, holding one batch at a time.
    ``await result.count()`` asks the store for the total (ignoring pagination), and
    ``await result.first()`` loads at most one item.

    Stores build one from callables; where a store gives no streamer, counter or first-loader,
    they are derived from the loader.
    """

    __slots__ = ("_count", "_first", "_load", "_stream")

    def __init__(
        self,
        load: Loader[T],
        *,
        stream: Streamer[T] | None = None,
        count: Counter | None = None,
        first: FirstLoader[T] | None = None,
    ) -> None:
        self._load = load
        self._stream = stream
        self._count = count
        self._first = first

    @classmethod
    def of(cls, items: Sequence[T]) -> SearchResult[T]:
        """A result over items already in memory."""
        snapshot = list(items)

        async def load() -> list[T]:
            return list(snapshot)

        async def count() -> int:
            return len(snapshot)

        return cls(load, count=count)

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self._load().__await__()

    async def all(self) -> list[T]:
        """Run the query and return every item (the same as ``await result``)."""
        return await self._load()

    async def stream(self, batch_size: int = DEFAULT_BATCH_SIZE) -> AsyncIterator[T]:
        """Yield items one by one, fetching ``batch_size`` at a time from the store.

        Raises:
            ValueError: ``batch_size`` is not a positive integer.
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if self._stream is not None:
            async for item in self._stream(batch_size):
                yield item
            return
        for item in await self._load():
            yield item

    async def count(self) -> int:
        """The number of matching items, ignoring pagination, asked of the store."""
        if self._count is not None:
            return await self._count()
        return len(await self._load())

    async def first(self) -> T | None:
        """The first item, or ``None``; loads at most one item where the store allows."""
        if self._first is not None:
            return await self._first()
        async for item in self.stream(batch_size=1):
            return item
        return None

    def map(self, fn: Callable[[T], Any]) -> SearchResult[Any]:
        """A result whose items are ``fn(item)``, computed as they are read."""

        async def load() -> list[Any]:
            return [fn(item) for item in await self._load()]

        async def stream(batch_size: int) -> AsyncIterator[Any]:
            async for item in self.stream(batch_size):
                yield fn(item)

        async def first() -> Any:
            item = await self.first()
            return None if item is None else fn(item)

        return SearchResult(load, stream=stream, count=self.count, first=first)
