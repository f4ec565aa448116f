"""The spec's Complete Example query handler, as written: no ``dto_type`` (inferred from the
generic parameter) and ``to_dto(doc) -> OrderSummaryDTO(**doc)`` called with the user's own
document: id under the DTO's id field, the package's bookkeeping removed (issue 10.3)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from examples.ecommerce.domain import OrderSummaryDTO
from examples.ecommerce.infrastructure import OrderSummaryProjection
from tests.integration.test_projection_queries import place_orders, setup_dispatcher

from cqrs_mongo import QueryOptions, SpecificationBuilder
from cqrs_mongo.mongo import (
    MongoProjectionWorker,
    MongoReadModelPersistence,
    MongoUnitOfWorkFactory,
    ProjectionPersistence,
)

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]

SEEN: list[dict[str, Any]] = []


class OrderSummaryQueryPersistence(ProjectionPersistence[OrderSummaryDTO, str]):
    collection = "order_summaries"

    def to_dto(self, doc: dict[str, Any]) -> OrderSummaryDTO:
        SEEN.append(dict(doc))
        return OrderSummaryDTO(**doc)


class PlainSummaries(MongoReadModelPersistence[OrderSummaryDTO, str]):
    collection = "plain_summaries"

    def to_dto(self, doc: dict[str, Any]) -> OrderSummaryDTO:
        SEEN.append(dict(doc))
        return OrderSummaryDTO(**doc)


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name, source="default")


def test_dto_type_is_inferred_from_the_generic_parameter() -> None:
    assert OrderSummaryQueryPersistence.dto_type is OrderSummaryDTO
    assert PlainSummaries.dto_type is OrderSummaryDTO


async def test_the_spec_shaped_projection_handler_reads_the_projection(
    factory: MongoUnitOfWorkFactory,
) -> None:
    SEEN.clear()
    dispatcher = setup_dispatcher(
        factory, OrderSummaryQueryPersistence, OrderSummaryQueryPersistence
    )
    expected = await place_orders(dispatcher)
    await MongoProjectionWorker(OrderSummaryProjection(), factory).run_until_caught_up()

    by_ids = await (await dispatcher.fetch(OrderSummaryDTO, ["order-03", "order-01"]))
    assert by_ids == [expected["order-03"], expected["order-01"]]
    spec = SpecificationBuilder().where("customer_id", "=", "cust-0").build()
    options = QueryOptions().with_specification(spec).with_ordering("-created_at")
    result = await dispatcher.fetch(OrderSummaryDTO, options.with_pagination(limit=2))
    page = await result.page()
    wanted = [expected[f"order-{n:02d}"] for n in (9, 6)]
    assert (page.items, page.total) == (wanted, 4)
    assert [dto async for dto in result.stream(batch_size=1)] == wanted
    assert await result == wanted
    assert SEEN
    assert all(set(doc) == set(OrderSummaryDTO.model_fields) for doc in SEEN), SEEN[0]


async def test_the_spec_shaped_read_model_handler_gets_the_id_under_its_field(
    factory: MongoUnitOfWorkFactory,
) -> None:
    SEEN.clear()
    row = OrderSummaryDTO(
        id="p-1",
        customer_id="c",
        status="created",
        total=Decimal("1.50"),
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    document = row.model_dump()
    document["_id"] = document.pop("id")
    await factory.database["plain_summaries"].insert_one(document)
    async with factory(read_only=True) as uow:
        handler = PlainSummaries()
        [by_id] = await handler.fetch(["p-1"], uow)
        everything = await handler.fetch(QueryOptions(), uow)
        page = await everything.page()
    assert by_id.id == "p-1"
    assert [dto.id for dto in page.items] == ["p-1"]
    assert all("_id" not in doc and doc["id"] == "p-1" for doc in SEEN)
