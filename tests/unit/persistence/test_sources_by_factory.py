"""A unit of work knows the factory it came from, so the dispatcher refuses a unit of another
source even when no factory was given ``source=`` (issue 10.1); nothing is written then."""

from __future__ import annotations

import pytest

from cqrs_mongo import (
    AggregateRoot,
    ConfigurationError,
    InMemoryRepository,
    InMemoryUnitOfWork,
    InMemoryUnitOfWorkFactory,
    PersistenceDispatcher,
    PersistenceRegistry,
    SourceMismatchError,
)


class Order(AggregateRoot[str]):
    total: int = 0


class Invoice(AggregateRoot[str]):
    amount: int = 0


class OrderRepository(InMemoryRepository[Order, str]):
    entity_type = Order


class InvoiceRepository(InMemoryRepository[Invoice, str]):
    entity_type = Invoice


def _setup() -> tuple[PersistenceDispatcher, InMemoryUnitOfWorkFactory, InMemoryUnitOfWorkFactory]:
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="orders_db")
    registry.register_retrieval(Order, OrderRepository, source="orders_db")
    registry.register_operation(Invoice, InvoiceRepository, source="invoicing_db")
    registry.register_retrieval(Invoice, InvoiceRepository, source="invoicing_db")
    orders, invoicing = InMemoryUnitOfWorkFactory(), InMemoryUnitOfWorkFactory()
    dispatcher = PersistenceDispatcher(
        uow_factories={"orders_db": orders, "invoicing_db": invoicing}, registry=registry
    )
    return dispatcher, orders, invoicing


async def test_a_unit_from_another_sources_factory_is_refused_without_source_argument() -> None:
    dispatcher, orders, _ = _setup()
    async with orders() as uow:
        with pytest.raises(SourceMismatchError, match=r"'invoicing_db'.*'orders_db'"):
            await dispatcher.apply(Invoice(id="inv-1", amount=5), uow=uow)
        with pytest.raises(SourceMismatchError, match=r"'invoicing_db'.*'orders_db'"):
            await dispatcher.fetch_domain(Invoice, ["inv-1"], uow=uow)
        assert not uow.has_written
    assert orders.store.collections.get("Invoice", {}) == {}
    assert await dispatcher.fetch_domain(Invoice, ["inv-1"]) == []


async def test_a_unit_from_the_right_factory_is_accepted() -> None:
    dispatcher, orders, invoicing = _setup()
    async with orders() as uow:
        await dispatcher.apply(Order(id="o-1", total=3), uow=uow)
    async with invoicing() as uow:
        await dispatcher.apply(Invoice(id="inv-1", amount=3), uow=uow)
    [order] = await dispatcher.fetch_domain(Order, ["o-1"])
    [invoice] = await dispatcher.fetch_domain(Invoice, ["inv-1"])
    assert (order.total, invoice.amount) == (3, 3)


async def test_a_unit_from_a_factory_the_dispatcher_does_not_know_is_refused() -> None:
    dispatcher, _, _ = _setup()
    async with InMemoryUnitOfWorkFactory()() as uow:
        with pytest.raises(SourceMismatchError, match="not in this dispatcher's uow_factories"):
            await dispatcher.apply(Order(id="o-2"), uow=uow)


async def test_another_factory_over_a_registered_store_counts_as_that_source() -> None:
    dispatcher, orders, _ = _setup()
    twin = InMemoryUnitOfWorkFactory(orders.store)
    async with twin() as uow:
        await dispatcher.apply(Order(id="o-2"), uow=uow)
        with pytest.raises(SourceMismatchError, match=r"'invoicing_db'.*'orders_db'"):
            await dispatcher.apply(Invoice(id="inv-2"), uow=uow)


async def test_a_hand_built_unit_is_accepted() -> None:
    dispatcher, orders, _ = _setup()
    async with InMemoryUnitOfWork(orders.store) as uow:
        await dispatcher.apply(Order(id="o-3", total=1), uow=uow)
    [order] = await dispatcher.fetch_domain(Order, ["o-3"])
    assert order.total == 1


def test_a_factory_registered_under_another_name_than_its_source_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"'invoicing_db'.*'orders_db'"):
        PersistenceDispatcher(
            uow_factories={"invoicing_db": InMemoryUnitOfWorkFactory(source="orders_db")},
            registry=PersistenceRegistry(),
        )
