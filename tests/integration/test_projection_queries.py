"""The seed's OrderSummaryDTO queries, answered from a projection the worker keeps up to date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from examples.ecommerce.domain import (
    Order,
    OrderCreated,
    OrderSubmitted,
    OrderSummaryDTO,
)
from examples.ecommerce.infrastructure import OrderSummaryProjection

from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.projections.projection_query import (
    ProjectionPersistence,
    ProjectionQueryPersistence,
    ProjectionSpecificationPersistence,
)
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory
from cqrs_mongo.persistence import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.specifications import QueryOptions, SpecificationBuilder

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]


# The seed's model and projection are the e-commerce example's (the spec's code, imports changed).


class OrderRepository(EventSourcedRepository[Order, str]):
    pass


class OrderSummaryQuery(ProjectionQueryPersistence[OrderSummaryDTO, str]):
    dto_type = OrderSummaryDTO
    collection = "order_summaries"


class OrderSummarySpecQuery(ProjectionSpecificationPersistence[OrderSummaryDTO]):
    dto_type = OrderSummaryDTO
    collection = "order_summaries"


class OrderSummaryPersistence(ProjectionPersistence[OrderSummaryDTO, str]):
    dto_type = OrderSummaryDTO
    collection = "order_summaries"


# --- wiring ----------------------------------------------------------------------------------

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, source="default")


def setup_dispatcher(
    factory: MongoUnitOfWorkFactory, query: type[Any], spec_query: type[Any]
) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Order, OrderRepository, source="default")
    registry.register_retrieval(Order, OrderRepository, source="default")
    registry.register_query(OrderSummaryDTO, query, source="default")
    registry.register_query_spec(OrderSummaryDTO, spec_query, source="default")
    return PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)


async def place_orders(dispatcher: PersistenceDispatcher) -> dict[str, OrderSummaryDTO]:
    """Twelve orders of three customers; every third is submitted. Returns what they imply."""
    expected = {}
    for n in range(12):
        order_id, customer = f"order-{n:02d}", f"cust-{n % 3}"
        created_at = BASE_TIME + timedelta(minutes=n)
        order = Order(id=order_id, customer_id=customer)
        order.add_event(
            OrderCreated(
                order_id=order_id,
                customer_id=customer,
                total=Decimal(f"{n}.50"),
                occurred_at=created_at,
            )
        )
        await dispatcher.apply(order)
        status = "created"
        if n % 3 == 0:
            [loaded] = await dispatcher.fetch_domain(Order, [order_id])
            loaded.add_event(OrderSubmitted(order_id=order_id, submitted_at=created_at))
            await dispatcher.apply(loaded)
            status = "submitted"
        expected[order_id] = OrderSummaryDTO(
            id=order_id,
            customer_id=customer,
            status=status,
            total=Decimal(f"{n}.50"),
            created_at=created_at,
        )
    return expected


@pytest.fixture(
    params=[
        (OrderSummaryQuery, OrderSummarySpecQuery),
        (OrderSummaryPersistence, OrderSummaryPersistence),
    ],
    ids=["two-classes", "one-class"],
)
async def seeded(
    request: pytest.FixtureRequest, factory: MongoUnitOfWorkFactory
) -> tuple[PersistenceDispatcher, dict[str, OrderSummaryDTO]]:
    dispatcher = setup_dispatcher(factory, *request.param)
    expected = await place_orders(dispatcher)
    worker = MongoProjectionWorker(OrderSummaryProjection(), factory, batch_size=5)
    await worker.run_until_caught_up()
    return dispatcher, expected


# --- the seed's queries ----------------------------------------------------------------------


async def test_fetch_by_ids_returns_what_the_events_imply(
    seeded: tuple[PersistenceDispatcher, dict[str, OrderSummaryDTO]],
) -> None:
    dispatcher, expected = seeded

    result = await dispatcher.fetch(OrderSummaryDTO, ["order-03", "order-04", "missing"])

    assert await result == [expected["order-03"], expected["order-04"]]


async def test_by_customer_and_status_newest_first_paginated(
    seeded: tuple[PersistenceDispatcher, dict[str, OrderSummaryDTO]],
) -> None:
    dispatcher, expected = seeded
    spec = (
        SpecificationBuilder()
        .where("customer_id", "=", "cust-1")
        .where("status", "=", "created")
        .build()
    )
    wanted = sorted(
        (dto for dto in expected.values() if dto.customer_id == "cust-1"),
        key=lambda dto: dto.created_at,
        reverse=True,
    )
    options = QueryOptions().with_specification(spec).with_ordering("-created_at")

    first = await dispatcher.fetch(OrderSummaryDTO, options.with_pagination(limit=3))
    second = await dispatcher.fetch(OrderSummaryDTO, options.with_pagination(limit=3, offset=3))

    assert await first == wanted[:3]
    assert await second == wanted[3:]
    assert await first.count() == len(wanted) == 4


async def test_keyset_pages_and_stream_cover_every_row_once(
    seeded: tuple[PersistenceDispatcher, dict[str, OrderSummaryDTO]],
    factory: MongoUnitOfWorkFactory,
) -> None:
    dispatcher, expected = seeded
    by_status = SpecificationBuilder().where("status", "=", "submitted").build()
    options = QueryOptions().with_specification(by_status).with_ordering("-created_at")
    wanted = sorted(
        (dto for dto in expected.values() if dto.status == "submitted"),
        key=lambda dto: dto.created_at,
        reverse=True,
    )
    spec_handler = OrderSummarySpecQuery()
    pages: list[OrderSummaryDTO] = []
    cursor: str | None = None
    async with factory() as uow:
        while True:
            page = await spec_handler.fetch_page(
                options.with_pagination(limit=3).with_cursor(cursor), uow
            )
            pages.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    streamed = [
        dto async for dto in (await dispatcher.fetch(OrderSummaryDTO, options)).stream(batch_size=2)
    ]

    assert pages == wanted
    assert streamed == wanted


async def test_bookkeeping_never_reaches_a_dto_even_with_strict_models(
    factory: MongoUnitOfWorkFactory,
) -> None:
    class StrictSummary(OrderSummaryDTO, extra="forbid"):
        pass

    class StrictQuery(ProjectionPersistence[StrictSummary, str]):
        dto_type = StrictSummary
        collection = "order_summaries"

    dispatcher = setup_dispatcher(factory, StrictQuery, StrictQuery)
    expected = await place_orders(dispatcher)
    await MongoProjectionWorker(OrderSummaryProjection(), factory).run_until_caught_up()

    everything = await dispatcher.fetch(StrictSummary, QueryOptions())
    by_ids = await dispatcher.fetch(StrictSummary, ["order-00"])

    assert {dto.id for dto in await everything} == set(expected)
    assert [dto.model_dump() for dto in await by_ids] == [expected["order-00"].model_dump()]
