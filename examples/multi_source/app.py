"""Orders and invoicing in separate databases behind one dispatcher."""

from __future__ import annotations

from decimal import Decimal

from cqrs_mongo import (
    AggregateRoot,
    PersistenceDispatcher,
    PersistenceRegistry,
    SourceMismatchError,
)
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWorkFactory
from examples.server import mongo_client, origin, scratch_database_name


class Order(AggregateRoot[str]):
    customer_id: str
    total: Decimal


class Invoice(AggregateRoot[str]):
    order_id: str
    amount: Decimal
    paid: bool = False


class OrderRepository(MongoRepository[Order, str]):
    entity_type = Order
    collection = "orders"


class InvoiceRepository(MongoRepository[Invoice, str]):
    entity_type = Invoice
    collection = "invoices"


def setup_dispatcher(
    orders: MongoUnitOfWorkFactory, invoicing: MongoUnitOfWorkFactory
) -> PersistenceDispatcher:
    """Each type names its source; the dispatcher opens units of work from that source."""
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="orders_db")
    registry.register_retrieval(Order, OrderRepository, source="orders_db")
    registry.register_operation(Invoice, InvoiceRepository, source="invoicing_db")
    registry.register_retrieval(Invoice, InvoiceRepository, source="invoicing_db")
    return PersistenceDispatcher(
        uow_factories={"orders_db": orders, "invoicing_db": invoicing}, registry=registry
    )


async def main() -> None:
    """Write to both contexts, each in its own transaction, and read back from each."""
    async with (
        mongo_client() as client,
        scratch_database_name(client, "orders") as orders_db,
        scratch_database_name(client, "invoicing") as invoicing_db,
    ):
        print(f"Multi-source example on {origin()}.")
        # Each factory could as well hold a client of its own, to another deployment.
        orders = MongoUnitOfWorkFactory(client, orders_db, source="orders_db")
        invoicing = MongoUnitOfWorkFactory(client, invoicing_db, source="invoicing_db")
        dispatcher = setup_dispatcher(orders, invoicing)

        async with orders() as uow:
            await dispatcher.apply(
                Order(id="o-1", customer_id="c-1", total=Decimal("42.50")), uow=uow
            )
        async with invoicing() as uow:
            (order,) = await dispatcher.fetch_domain(Order, ["o-1"])  # its own orders_db unit
            invoice = Invoice(id="inv-1", order_id=order.id, amount=order.total)
            await dispatcher.apply(invoice, uow=uow)
        print(f"Order o-1 stored in {orders_db!r}, invoice inv-1 in {invoicing_db!r}.")

        # A unit of work belongs to one source: using it for the other is refused.
        async with orders() as uow:
            try:
                await dispatcher.apply(invoice, uow=uow)
            except SourceMismatchError as exc:
                print(f"Refused across sources: {exc}")

        order_docs = await client[orders_db]["orders"].count_documents({})
        invoice_docs = await client[invoicing_db]["invoices"].count_documents({})
        print(f"Documents: {order_docs} in orders, {invoice_docs} in invoices.")
