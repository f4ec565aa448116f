"""The demo: create and submit orders, then read them back, printing each step."""

from __future__ import annotations

from decimal import Decimal

from cqrs_mongo.mongo import MongoUnitOfWorkFactory
from examples.ecommerce.application import (
    CreateOrderCommand,
    SubmitOrderCommand,
    handle_create_order,
    handle_submit_order,
)
from examples.ecommerce.domain import Order
from examples.ecommerce.infrastructure import setup_dispatcher
from examples.server import mongo_client, origin, scratch_database_name

COMMANDS = [
    CreateOrderCommand("order-1", "cust-ada", Decimal("19.90")),
    CreateOrderCommand("order-2", "cust-ada", Decimal("5.00")),
    CreateOrderCommand("order-3", "cust-grace", Decimal("120.00")),
]


async def main() -> None:
    """Run the whole scenario and print what happened."""
    async with mongo_client() as client, scratch_database_name(client, "shop") as db_name:
        print(f"E-commerce demo on {origin()}.")
        uow_factory = MongoUnitOfWorkFactory(client, db_name)
        dispatcher = setup_dispatcher(uow_factory)

        for command in COMMANDS:
            async with uow_factory() as uow:
                await handle_create_order(command, dispatcher, uow)
            print(
                f"  applied CreateOrder({command.order_id}, {command.customer_id}, {command.total})"
            )
        async with uow_factory() as uow:
            await handle_submit_order(SubmitOrderCommand("order-1"), dispatcher, uow)
        print("  applied SubmitOrder(order-1)")

        orders = await dispatcher.fetch_domain(Order, ["order-1", "order-2", "order-3"])
        for order in orders:
            print(f"  {order.id}: {order.status}, total {order.total}, version {order.version}")
        print("Not in this demo yet: event store, projection worker, Redis cache (landing soon).")
