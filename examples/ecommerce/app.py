"""The demo: commands through the dispatcher, events in the store, a projection kept up by its
worker, the seed's query handler on it, and a cached read; each step printed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.mongo import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from examples.ecommerce.application import (
    CreateOrderCommand,
    GetCustomerOrdersQuery,
    SubmitOrderCommand,
    handle_create_order,
    handle_get_customer_orders,
    handle_submit_order,
)
from examples.ecommerce.domain import Order, OrderSummaryDTO
from examples.ecommerce.infrastructure import (
    REDIS_URL,
    OrderSummaryProjection,
    setup_cache,
    setup_dispatcher,
)
from examples.server import mongo_client, origin, scratch_database_name

COMMANDS = [
    CreateOrderCommand("order-1", "cust-ada", Decimal("19.90")),
    CreateOrderCommand("order-2", "cust-ada", Decimal("5.00")),
    CreateOrderCommand("order-3", "cust-grace", Decimal("120.00")),
]


async def main() -> None:
    """Run the whole scenario on a fresh database, then drop it."""
    async with mongo_client() as client, scratch_database_name(client, "shop") as db_name:
        redis = RedisCacheService.from_url(REDIS_URL)
        try:
            await run_scenario(client, db_name, redis)
        finally:
            await redis.aclose()


async def run_scenario(client: Any, db_name: str, redis: RedisCacheService) -> None:
    """Commands, the event store, the projection, a query and a cached read."""
    print(f"E-commerce demo on {origin()}.")
    uow_factory = MongoUnitOfWorkFactory(client, db_name)
    dispatcher = setup_cache(setup_dispatcher(uow_factory), redis, namespace=db_name)
    worker = MongoProjectionWorker(OrderSummaryProjection(), uow_factory)
    await worker.start()
    try:
        await run_commands(uow_factory, dispatcher)
        await show_event_store(client[db_name])
        await wait_until_projected(worker)
        await show_queries(dispatcher)
    finally:
        await worker.stop()


async def run_commands(uow_factory: MongoUnitOfWorkFactory, dispatcher: Any) -> None:
    async def create(uow: MongoUnitOfWork, command: CreateOrderCommand) -> str:
        return await handle_create_order(command, dispatcher, uow)

    async def submit(uow: MongoUnitOfWork, command: SubmitOrderCommand) -> str:
        return await handle_submit_order(command, dispatcher, uow)

    print("Commands (each in its own transaction, re-run on a transient error):")
    for command in COMMANDS:
        await uow_factory.run(create, command)
        print(f"  CreateOrder({command.order_id}, {command.customer_id}, {command.total})")
    await uow_factory.run(submit, SubmitOrderCommand("order-1"))
    print("  SubmitOrder(order-1)")


async def show_event_store(database: Any) -> None:
    events = database["events"]
    print(f"Event store: {await events.count_documents({})} events; stream order-1:")
    async for event in events.find({"stream_id": "order-1"}).sort("version"):
        print(f"  v{event['version']} {event['event_type']}")


async def wait_until_projected(worker: MongoProjectionWorker) -> None:
    # The worker runs in the background already; this waits for it (or helps it) to apply
    # every event committed so far, so the queries below see all of them.
    await worker.run_until_caught_up()
    print(f"Projection {worker.name!r} caught up with the event store.")


async def show_queries(dispatcher: Any) -> None:
    for order in await dispatcher.fetch_domain(Order, ["order-1", "order-2", "order-3"]):
        print(f"  aggregate {order.id}: {order.status}, version {order.version}")
    rows = await handle_get_customer_orders(GetCustomerOrdersQuery("cust-ada"), dispatcher)
    print(f"Query GetCustomerOrders(cust-ada): {len(rows)} projection rows, newest first:")
    for row in rows:
        print(f"  {row.id}: {row.status}, total {row.total}")

    await (await dispatcher.fetch(OrderSummaryDTO, ["order-1"]))  # a miss: fills the cache
    before = dispatcher.stats.hits
    (summary,) = await (await dispatcher.fetch(OrderSummaryDTO, ["order-1"]))
    if dispatcher.stats.hits > before:
        print(f"Cached read: {summary.id} ({summary.status}) served from Redis.")
    else:
        print(f"Cached read: Redis unavailable, {summary.id} read from MongoDB instead.")
