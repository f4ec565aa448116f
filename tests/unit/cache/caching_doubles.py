"""Test doubles for the caching dispatcher: a model, handlers that count and pause, flaky caches."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from cqrs_mongo import (
    AggregateRoot,
    InMemoryQueryPersistence,
    InMemoryRepository,
    InMemoryStore,
    InMemoryUnitOfWork,
    InMemoryUnitOfWorkFactory,
    PersistenceDispatcher,
    PersistenceRegistry,
)
from cqrs_mongo.cache import ICacheService, InMemoryCacheService
from cqrs_mongo.errors import CacheError


class Order(AggregateRoot[str]):
    customer: str = ""
    status: str = "new"
    total: Decimal = Decimal("0.00")


class OrderView(BaseModel):
    id: str
    status: str


class Probe:
    """Counts handler reads and can hold a read after it has read the store, until released."""

    def __init__(self) -> None:
        self.retrieves: list[list[Any]] = []
        self.queries: list[Any] = []
        self.hold = False
        self.read_done = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_next: BaseException | None = None

    @property
    def reads(self) -> int:
        return len(self.retrieves) + len(self.queries)

    async def after_read(self) -> None:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        if self.hold:
            self.hold = False
            self.read_done.set()
            await self.release.wait()


class OrderRepository(InMemoryRepository[Order, str]):
    entity_type = Order

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    async def retrieve(self, ids: Sequence[str], uow: InMemoryUnitOfWork) -> list[Order]:
        self.probe.retrieves.append(list(ids))
        found = await super().retrieve(ids, uow)  # the (possibly old) state is read here
        await self.probe.after_read()
        return found


class OrderViewQuery(InMemoryQueryPersistence[OrderView, str]):
    dto_type = OrderView

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    async def fetch(self, criteria: Any, uow: InMemoryUnitOfWork) -> Any:
        self.probe.queries.append(criteria)
        found = await super().fetch(criteria, uow)
        await self.probe.after_read()
        return found


class World:
    """A dispatcher over an in-memory store, with its probe and its unit-of-work factory."""

    def __init__(self) -> None:
        self.probe = Probe()
        self.store = InMemoryStore()
        self.uow_factory = InMemoryUnitOfWorkFactory(self.store)
        registry = PersistenceRegistry()
        registry.register_operation(Order, OrderRepository)
        registry.register_retrieval(Order, OrderRepository)
        registry.register_query(OrderView, OrderViewQuery)
        registry.register_query_spec(OrderView, OrderViewQuery)
        self.dispatcher = PersistenceDispatcher(
            uow_factories={"default": self.uow_factory},
            registry=registry,
            handler_factory=lambda cls: cls(self.probe),
        )

    async def save_view(self, view: OrderView) -> None:
        async with self.uow_factory() as uow:
            await OrderViewQuery(self.probe).save(view, uow)

    async def seed_orders(self, *ids: str, status: str = "new") -> None:
        for order_id in ids:
            await self.dispatcher.apply(Order(id=order_id, customer="c", status=status))

    async def rename(self, order_id: str, status: str) -> Order:
        """Change an order through the plain dispatcher (bypassing any cache)."""
        (order,) = await self.dispatcher.fetch_domain(Order, [order_id])
        order.status = status
        return order


class CountingCache:
    """An ICacheService that counts calls per method and can be broken or made to hang."""

    def __init__(self, inner: ICacheService | None = None) -> None:
        self.inner = inner if inner is not None else InMemoryCacheService()
        self.calls: list[str] = []
        self.down = False
        self.hang = False

    async def _enter(self, name: str) -> None:
        self.calls.append(name)
        if self.hang:
            await asyncio.Event().wait()
        if self.down:
            raise CacheError(f"Cache is down ({name}).")

    async def get(self, key: str) -> bytes | None:
        await self._enter("get")
        return await self.inner.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        await self._enter("get_many")
        return await self.inner.get_many(keys)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self._enter("set")
        await self.inner.set(key, value, ttl)

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        await self._enter("set_many")
        await self.inner.set_many(items, ttl)

    async def get_or_set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> list[bytes]:
        await self._enter("get_or_set_many")
        return await self.inner.get_or_set_many(items, ttl)

    async def delete(self, key: str) -> None:
        await self._enter("delete")
        await self.inner.delete(key)

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self._enter("delete_many")
        await self.inner.delete_many(keys)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
