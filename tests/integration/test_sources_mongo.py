"""Factories built as the spec builds them (no ``source=``): a unit of the orders factory cannot
write an invoice into the orders database (issue 10.1)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from cqrs_mongo import (
    AggregateRoot,
    PersistenceDispatcher,
    PersistenceRegistry,
    SourceMismatchError,
)
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWorkFactory


class Order(AggregateRoot[str]):
    total: Decimal = Decimal("0")


class Invoice(AggregateRoot[str]):
    amount: Decimal = Decimal("0")


class OrderRepository(MongoRepository[Order, str]):
    entity_type = Order
    collection = "orders"


class InvoiceRepository(MongoRepository[Invoice, str]):
    entity_type = Invoice
    collection = "invoices"


@pytest.fixture
async def databases(mongo_client: Any) -> AsyncIterator[tuple[str, str]]:
    names = (f"orders_{uuid.uuid4().hex[:8]}", f"invoicing_{uuid.uuid4().hex[:8]}")
    try:
        yield names
    finally:
        for name in names:
            await mongo_client.drop_database(name)


async def test_a_unit_of_the_orders_factory_cannot_write_an_invoice(
    mongo_client: Any, databases: tuple[str, str]
) -> None:
    orders_name, invoicing_name = databases
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="orders_db")
    registry.register_operation(Invoice, InvoiceRepository, source="invoicing_db")
    orders_factory = MongoUnitOfWorkFactory(mongo_client, orders_name)
    dispatcher = PersistenceDispatcher(
        uow_factories={
            "orders_db": orders_factory,
            "invoicing_db": MongoUnitOfWorkFactory(mongo_client, invoicing_name),
        },
        registry=registry,
    )
    invoice = Invoice(id="inv-1", amount=Decimal("9.90"))
    async with orders_factory() as uow:
        await dispatcher.apply(Order(id="o-1"), uow=uow)
        with pytest.raises(SourceMismatchError, match=r"'invoicing_db'.*'orders_db'"):
            await dispatcher.apply(invoice, uow=uow)
    assert invoice.version == 0
    assert await mongo_client[orders_name]["invoices"].count_documents({}) == 0
    assert await mongo_client[orders_name]["orders"].count_documents({}) == 1
    await dispatcher.apply(invoice)
    assert await mongo_client[invoicing_name]["invoices"].count_documents({}) == 1
