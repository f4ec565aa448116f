"""The workloads through cqrs-mongo, written the way its documentation tells a user to."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from bench import dataset
from bench.models import Cart, CartOpened, Customer, ItemAdded, OrderRow, SnapshotCart
from cqrs_mongo import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.eventsourcing import EveryNEvents
from cqrs_mongo.mongo import (
    MongoReadModelPersistence,
    MongoRepository,
    MongoUnitOfWorkFactory,
)
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository


class CustomerRepository(MongoRepository[Customer, str]):
    entity_type = Customer
    collection = "customers"


class CartRepository(EventSourcedRepository[Cart, str]):
    events_collection = "events"


class SnapshotCartRepository(EventSourcedRepository[SnapshotCart, str]):
    events_collection = "events"
    snapshot_strategy = EveryNEvents(dataset.SNAPSHOT_EVERY)


class OrderRows(MongoReadModelPersistence[OrderRow, str]):
    dto_type = OrderRow
    collection = "order_rows"
    indexes = dataset.ORDER_ROW_INDEXES


class CqrsSide:
    """A dispatcher (and a caching one on Redis) over one client and database."""

    def __init__(self, client: Any, database_name: str, redis_url: str) -> None:
        self.factory = MongoUnitOfWorkFactory(client, database_name)
        registry = PersistenceRegistry()
        registry.register_operation(Customer, CustomerRepository)
        registry.register_retrieval(Customer, CustomerRepository)
        registry.register_operation(Cart, CartRepository)
        registry.register_retrieval(Cart, CartRepository)
        registry.register_query(OrderRow, OrderRows)
        registry.register_query_spec(OrderRow, OrderRows)
        _register_stream_workloads(registry)
        self.dispatcher = PersistenceDispatcher(
            uow_factories={"default": self.factory}, registry=registry
        )
        self.rows = OrderRows()
        self.cache_service = RedisCacheService.from_url(redis_url)
        self.cached_dispatcher = CachingPersistenceDispatcher(
            inner=self.dispatcher,
            cache_service=self.cache_service,
            default_ttl=300,
            namespace=f"bench-{uuid.uuid4().hex[:8]}",
        )
        self.ids = dataset.IdSource(f"cqrs-{uuid.uuid4().hex[:6]}")

    async def close(self) -> None:
        await self.cache_service.aclose()

    # 1. dispatcher.apply of a new aggregate: a unit of work opened and committed; its only
    #    operation is one insert, sent alone (no transaction).
    async def persist_one(self) -> None:
        seed = dataset.customer_document(0)
        fields = {k: v for k, v in seed.items() if k not in ("_id", "version")}
        await self.dispatcher.apply(Customer(id=self.ids.next(), **fields))

    # 2. dispatcher.fetch_domain: a read-only unit (session, no transaction) and one find.
    async def load_ids(self, ids: Sequence[str]) -> list[Any]:
        return await self.dispatcher.fetch_domain(Customer, ids)

    # 3a. the read-side handler's fetch_page: one $facet aggregate, in a read-only unit.
    async def page(self) -> tuple[list[Any], int]:
        async with self.factory(read_only=True) as uow:
            page = await self.rows.fetch_page(dataset.page_options(), uow)
        return page.items, page.total

    # 3b. the same through the dispatcher: SearchResult.page() (the same $facet, read-only unit).
    async def page_via_dispatcher(self) -> tuple[list[Any], int]:
        result = await self.dispatcher.fetch(OrderRow, dataset.page_options())
        page = await result.page()
        return page.items, page.total

    # 4. SearchResult.stream over a server cursor.
    async def stream(self, rows: int, total_rows: int) -> int:
        result = await self.dispatcher.fetch(OrderRow, dataset.stream_options(rows, total_rows))
        count = 0
        async for _row in result.stream(batch_size=dataset.STREAM_BATCH):
            count += 1
        return count

    # 5. a new event-sourced aggregate with 10 events, applied in one unit of work.
    async def es_apply(self) -> None:
        cart = Cart(id=self.ids.next())
        cart.add_event(CartOpened(customer_id="cust-001"))
        for n in range(dataset.EVENTS_PER_CART - 1):
            cart.add_event(ItemAdded(sku=f"sku-{n}", quantity=1 + n % 3, price=Decimal("9.99")))
        await self.dispatcher.apply(cart)

    # 6. dispatcher.fetch_domain of event-sourced aggregates (one event query).
    async def es_load(self, ids: Sequence[str]) -> list[Any]:
        return await self.dispatcher.fetch_domain(Cart, ids)

    # 7. the caching dispatcher's fetch by ids, with every entry already cached.
    async def cached(self, ids: Sequence[str]) -> list[Any]:
        return await (await self.cached_dispatcher.fetch(OrderRow, ids))

    async def seed_carts(self, ids: Sequence[str]) -> None:
        for stream_id in ids:
            cart = Cart(id=stream_id)
            cart.add_event(CartOpened(customer_id="cust-001"))
            for n in range(dataset.EVENTS_PER_CART - 1):
                cart.add_event(ItemAdded(sku=f"sku-{n}", quantity=1, price=Decimal("9.99")))
            await self.dispatcher.apply(cart)

    # --- one event-sourced aggregate: es_stream<n> and es_snapshot ---------------------------

    # es_stream<n>: dispatcher.fetch_domain of one cart of n events (one event query).
    async def es_stream(self, stream_id: str) -> list[Any]:
        return await self.dispatcher.fetch_domain(Cart, [stream_id])

    # es_snapshot: one cart of 1,000 events with its snapshot at 1,000 (snapshot + event query).
    async def es_snapshot(self, stream_id: str) -> list[Any]:
        return await self.dispatcher.fetch_domain(SnapshotCart, [stream_id])

    async def seed_streams(self) -> None:
        for length in dataset.STREAM_LENGTHS:
            await self.dispatcher.apply(_cart(Cart(id=dataset.stream_cart_id(length)), length))
        snapshot_cart = SnapshotCart(id=dataset.SNAPSHOT_CART_ID)
        await self.dispatcher.apply(_cart(snapshot_cart, dataset.SNAPSHOT_EVERY))


def _register_stream_workloads(registry: PersistenceRegistry) -> None:
    registry.register_operation(SnapshotCart, SnapshotCartRepository)
    registry.register_retrieval(SnapshotCart, SnapshotCartRepository)


def _cart(cart: Cart, events: int) -> Cart:
    """``cart`` after ``events`` events: opened, then ``events - 1`` items added."""
    cart.add_event(CartOpened(customer_id="cust-001"))
    for n in range(events - 1):
        cart.add_event(ItemAdded(sku=f"sku-{n}", quantity=1 + n % 3, price=Decimal("9.99")))
    return cart


# --- one-document writes (issue 14 item 4) ---------------------------------------------------


class CqrsSingleWrites:
    """``dispatcher.apply`` of one loaded aggregate (version-checked update) and of one event."""

    def __init__(self, cqrs: CqrsSide) -> None:
        self.cqrs = cqrs
        self.customer: Customer | None = None
        self.cart: Cart | None = None

    def customer_id(self) -> str | None:
        return None if self.customer is None else self.customer.id

    def stream(self) -> str:
        return "" if self.cart is None else self.cart.id

    async def update_one(self) -> None:
        dispatcher = self.cqrs.dispatcher
        if self.customer is None:
            seed = dataset.customer_document(0)
            fields = {k: v for k, v in seed.items() if k not in ("_id", "version")}
            self.customer = Customer(id=self.cqrs.ids.next(), **fields)
            await dispatcher.apply(self.customer)
            return
        self.customer.name = f"renamed {self.customer.version}"
        await dispatcher.apply(self.customer)

    async def append_one(self) -> None:
        if self.cart is None:
            self.cart = Cart(id=self.cqrs.ids.next())
            self.cart.add_event(CartOpened(customer_id="cust-001"))
        else:
            n = self.cart.version + 1
            item = ItemAdded(sku=f"sku-{n}", quantity=1 + n % 3, price=Decimal("9.99"))
            self.cart.add_event(item)
        await self.cqrs.dispatcher.apply(self.cart)
