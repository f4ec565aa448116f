"""SearchResult: a lazy query result, awaited to a list or streamed batch by batch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T", covariant=True)
U = TypeVar("U")

Loader = Callable[[], Awaitable[list[U]]]
Streamer = Callable[[int], AsyncIterator[U]]
Counter = Callable[[], Awaitable[int]]
FirstLoader = Callable[[], Awaitable[U | None]]
PageLoader = Callable[[], Awaitable["Page[U]"]]

DEFAULT_BATCH_SIZE = 100


@asynccontextmanager
async def closing_stream(items: AsyncIterator[U]) -> AsyncIterator[AsyncIterator[U]]:
    """``items``, closed (``aclose()``, where it has one) when the block is left, however."""
    try:
        yield items
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results with the total number of matches.

    Attributes:
        items: the results of this page, in order.
        total: how many results match, across all pages.
        next_cursor: the keyset token of the next page (``QueryOptions.with_cursor``), or
            ``None`` when this page is the last one or the store has no cursors.
    """

    items: list[T]
    total: int
    next_cursor: str | None = None


class SearchResult(Generic[T]):
    """The result of ``fetch``: nothing runs until it is awaited, streamed or counted.

    ``await result`` runs the query and returns a list (each await runs it again).
    ``result.stream(batch_size=n)`` iterates a server cursor, holding one batch at a time.
    ``await result.count()`` asks the store for the total (ignoring pagination), and
    ``await result.first()`` loads at most one item, and ``await result.page()`` returns the
    items with the total (one round trip where the store can, e.g. a ``$facet`` on MongoDB).

    Stores build one from callables; where a store gives no streamer, counter, first-loader or
    page-loader, they are derived from the loader (and the counter).
    """

    __slots__ = ("_count", "_first", "_load", "_page", "_stream")

    def __init__(
        self,
        load: Loader[T],
        *,
        stream: Streamer[T] | None = None,
        count: Counter | None = None,
        first: FirstLoader[T] | None = None,
        page: PageLoader[T] | None = None,
    ) -> None:
        self._load = load
        self._stream = stream
        self._count = count
        self._first = first
        self._page = page

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

        Leaving the loop early releases the store's resources (a server cursor, a unit of
        work) when this generator is closed: at once with ``aclose()`` or
        ``contextlib.aclosing``, else within a few event-loop turns after a bare ``break``.

        Raises:
            ValueError: ``batch_size`` is not a positive integer.
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        if self._stream is not None:
            # An ``async for`` does not close the generator it leaves; without aclosing, a
            # consumer's break would leave the store's stream (its server cursor and unit
            # of work) open until the garbage collector finalised it in another task.
            async with closing_stream(self._stream(batch_size)) as items:
                async for item in items:
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

    async def page(self) -> Page[T]:
        """The items (as awaiting gives them) with the total number of matches."""
        if self._page is not None:
            return await self._page()
        return Page(await self._load(), await self.count())

    def map(self, fn: Callable[[T], Any]) -> SearchResult[Any]:
        """A result whose items are ``fn(item)``, computed as they are read."""

        async def load() -> list[Any]:
            return [fn(item) for item in await self._load()]

        async def stream(batch_size: int) -> AsyncIterator[Any]:
            async with closing_stream(self.stream(batch_size)) as items:
                async for item in items:
                    yield fn(item)

        async def first() -> Any:
            item = await self.first()
            return None if item is None else fn(item)

        return SearchResult(load, stream=stream, count=self.count, first=first)
