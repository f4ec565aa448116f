"""The demo: create and submit orders, then read them back, printing each step."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cqrs_mongo.cache import RedisCacheService
from cqrs_mongo.mongo import MongoUnitOfWork, MongoUnitOfWorkFactory
from examples.ecommerce.application import (
    CreateOrderCommand,
    SubmitOrderCommand,
    handle_create_order,
    handle_submit_order,
)
from examples.ecommerce.domain import Order
from examples.ecommerce.infrastructure import REDIS_URL, setup_cache, setup_dispatcher
from examples.server import mongo_client, origin, scratch_database_name

COMMANDS = [
    CreateOrderCommand("order-1", "cust-ada", Decimal("19.90")),
    CreateOrderCommand("order-2", "cust-ada", Decimal("5.00")),
    CreateOrderCommand("order-3", "cust-grace", Decimal("120.00")),
]


async def main() -> None:
    """Run the whole scenario and print what happened."""
    async with mongo_client() as client, scratch_database_name(client, "shop") as db_name:
        redis = RedisCacheService.from_url(REDIS_URL)
        try:
            await run_scenario(client, db_name, redis)
        finally:
            await redis.aclose()


async def run_scenario(client: Any, db_name: str, redis: RedisCacheService) -> None:
    """Commands, the event store, aggregates rebuilt from events, a cached read."""
    print(f"E-commerce demo on {origin()}.")
    uow_factory = MongoUnitOfWorkFactory(client, db_name)
    dispatcher = setup_cache(setup_dispatcher(uow_factory), redis, namespace=db_name)

    async def create(uow: MongoUnitOfWork, command: CreateOrderCommand) -> str:
        return await handle_create_order(command, dispatcher, uow)

    print("Commands:")
    for command in COMMANDS:
        # run() re-runs the whole handler in a new transaction after a transient error.
        await uow_factory.run(create, command)
        print(f"  CreateOrder({command.order_id}, {command.customer_id}, {command.total})")
    submit = SubmitOrderCommand("order-1")
    await uow_factory.run(lambda uow: handle_submit_order(submit, dispatcher, uow))
    print("  SubmitOrder(order-1)")

    events = client[db_name]["events"]
    print(f"Event store: {await events.count_documents({})} events; stream order-1:")
    async for event in events.find({"stream_id": "order-1"}).sort("version"):
        print(f"  v{event['version']} {event['event_type']}")

    print("Aggregates rebuilt from their events:")
    for order in await dispatcher.fetch_domain(Order, ["order-1", "order-2", "order-3"]):
        print(f"  {order.id}: {order.status}, total {order.total}, version {order.version}")

    (cached,) = await dispatcher.fetch_domain(Order, ["order-1"])
    stats = dispatcher.stats
    if stats.hits:
        print(f"Cached read: {cached.id} ({cached.status}) served from Redis.")
    else:
        print(f"Cached read: Redis unavailable, {cached.id} read from MongoDB instead.")
