"""Contract of the read-side handlers (ids, specifications, pages), run on every backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from cqrs_mongo.errors import InvalidSpecificationError, MongomockLimitError
from cqrs_mongo.mongo import (
    MongoQueryPersistence,
    MongoReadModelPersistence,
    MongoSpecificationPersistence,
    MongoUnitOfWorkFactory,
)
from cqrs_mongo.persistence import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.specifications import QueryOptions, SpecificationBuilder

START = datetime(2024, 1, 1, tzinfo=UTC)


class OrderSummaryDTO(BaseModel):
    id: str
    customer_id: str
    status: str
    total: Decimal
    created_at: datetime


class OrderSummaries(MongoQueryPersistence[OrderSummaryDTO, str]):
    dto_type = OrderSummaryDTO
    collection = "order_summaries"


class OrderSummarySearch(MongoSpecificationPersistence[OrderSummaryDTO]):
    dto_type = OrderSummaryDTO
    collection = "order_summaries"


class OrderSummaryPersistence(MongoReadModelPersistence[OrderSummaryDTO, str]):
    dto_type = OrderSummaryDTO
    collection = "order_summaries"


class OrderTotals(MongoQueryPersistence[tuple[str, Decimal], str]):
    """A handler building something other than a pydantic model."""

    dto_type = tuple
    collection = "order_summaries"

    def to_dto(self, document: dict[str, Any]) -> tuple[str, Decimal]:
        return (document["id"], document["total"])


def submitted(customer: str = "cust-1") -> QueryOptions:
    spec = (
        SpecificationBuilder()
        .where("customer_id", "=", customer)
        .where("status", "=", "submitted")
        .build()
    )
    return QueryOptions().with_specification(spec).with_ordering("-created_at")


class QueryPersistenceContract(ABC):
    supports_transactions: ClassVar[bool]
    # Keyset filters use {"$type": [...]} to place nulls; mongomock rejects a list there.
    supports_keyset_cursors: ClassVar[bool] = True
    backend: Any

    @abstractmethod
    def create_backend(self) -> Any: ...

    def create_factory(self) -> MongoUnitOfWorkFactory:
        return self.create_backend().factory()

    @pytest.fixture(autouse=True)
    async def _seed(self, _bind: None) -> None:
        # 30 orders: every third is "pending", the rest "submitted"; two customers.
        documents = [
            {
                "_id": f"o-{i:02d}",
                "customer_id": "cust-1" if i < 24 else "cust-2",
                "status": "pending" if i % 3 == 0 else "submitted",
                "total": Decimal(i) + Decimal("0.50"),
                "created_at": START + timedelta(hours=i),
            }
            for i in range(30)
        ]
        await self.create_backend().database["order_summaries"].insert_many(documents)

    def expected_submitted(self, customer: str = "cust-1") -> list[str]:
        ids = [i for i in range(30) if i % 3 and (i < 24) == (customer == "cust-1")]
        return [f"o-{i:02d}" for i in sorted(ids, reverse=True)]

    async def test_fetch_by_ids_keeps_order_and_skips_missing(self) -> None:
        async with self.create_factory()(read_only=True) as uow:
            found = await OrderSummaries().fetch(["o-05", "nope", "o-01", "o-05"], uow)
        assert [dto.id for dto in found] == ["o-05", "o-01"]
        assert found[0].total == Decimal("5.50")
        assert found[0].created_at == START + timedelta(hours=5)

    async def test_to_dto_can_be_overridden_and_sees_the_id_under_its_field(self) -> None:
        async with self.create_factory()(read_only=True) as uow:
            found = await OrderTotals().fetch(["o-03", "o-01"], uow)
        assert found == [("o-03", Decimal("3.50")), ("o-01", Decimal("1.50"))]

    async def test_fetch_by_ids_refuses_a_single_string(self) -> None:
        async with self.create_factory()(read_only=True) as uow:
            with pytest.raises(InvalidSpecificationError):
                await OrderSummaries().fetch("o-05", uow)

    async def test_specification_result_loads_counts_and_takes_first(self) -> None:
        options = submitted().with_pagination(limit=5)
        async with self.create_factory()(read_only=True) as uow:
            result = await OrderSummarySearch().fetch(options, uow)
            items = await result
            total = await result.count()
            first = await result.first()
        assert [dto.id for dto in items] == self.expected_submitted()[:5]
        assert total == len(self.expected_submitted())
        assert first is not None
        assert first.id == self.expected_submitted()[0]

    async def test_stream_yields_every_match_in_order(self) -> None:
        async with self.create_factory()(read_only=True) as uow:
            result = await OrderSummarySearch().fetch(submitted(), uow)
            streamed = [dto.id async for dto in result.stream(batch_size=4)]
        assert streamed == self.expected_submitted()

    async def test_first_of_no_match_is_none(self) -> None:
        async with self.create_factory()(read_only=True) as uow:
            result = await OrderSummarySearch().fetch(submitted("nobody"), uow)
            assert await result.first() is None
            assert await result.count() == 0
            assert await result == []

    async def test_pages_with_total_follow_the_keyset_cursor(self) -> None:
        search = OrderSummarySearch()
        options = submitted().with_pagination(limit=6)
        seen: list[str] = []
        totals = set()

        async def walk() -> None:
            nonlocal options
            async with self.create_factory()(read_only=True) as uow:
                while True:
                    page = await search.fetch_page(options, uow)
                    seen.extend(dto.id for dto in page.items)
                    totals.add(page.total)
                    if page.next_cursor is None:
                        break
                    options = options.with_cursor(page.next_cursor)

        if not self.supports_keyset_cursors:
            # mongomock cannot evaluate the keyset conditions: one clear error, not a TypeError.
            with pytest.raises(MongomockLimitError, match="keyset"):
                await walk()
            return
        await walk()
        assert seen == self.expected_submitted()
        assert totals == {len(self.expected_submitted())}

    async def test_page_of_no_match_has_zero_total(self) -> None:
        async with self.create_factory()(read_only=True) as uow:
            page = await OrderSummarySearch().fetch_page(submitted("nobody"), uow)
        assert (page.items, page.total, page.next_cursor) == ([], 0, None)

    async def test_one_class_serves_ids_and_specifications(self) -> None:
        handler = OrderSummaryPersistence()
        async with self.create_factory()(read_only=True) as uow:
            by_ids = await handler.fetch(["o-02", "o-01"], uow)
            by_spec = await (await handler.fetch(submitted("cust-2"), uow))
            with pytest.raises(InvalidSpecificationError):
                await handler.fetch("o-01", uow)
        assert [dto.id for dto in by_ids] == ["o-02", "o-01"]
        assert [dto.id for dto in by_spec] == self.expected_submitted("cust-2")

    async def test_the_seed_dispatcher_example_runs_on_this_backend(self) -> None:
        registry = PersistenceRegistry()
        registry.register_query(OrderSummaryDTO, OrderSummaryPersistence, source="default")
        registry.register_query_spec(OrderSummaryDTO, OrderSummaryPersistence, source="default")
        dispatcher = PersistenceDispatcher(
            uow_factories={"default": self.create_factory()},
            registry=registry,
            handler_factory=lambda cls: cls(),
        )
        by_ids = await (await dispatcher.fetch(OrderSummaryDTO, ["o-04", "o-02"]))
        options = submitted().with_pagination(limit=3)
        by_spec = await (await dispatcher.fetch(OrderSummaryDTO, options))
        assert [dto.id for dto in by_ids] == ["o-04", "o-02"]
        assert [dto.id for dto in by_spec] == self.expected_submitted()[:3]


class TestQueryPersistenceOnMongomock(QueryPersistenceContract):
    supports_transactions = False
    supports_keyset_cursors = False

    @pytest.fixture
    def _bind(self, mongomock_backend: Any) -> None:
        self.backend = mongomock_backend

    def create_backend(self) -> Any:
        return self.backend


class TestQueryPersistenceOnEmbeddedServer(QueryPersistenceContract):
    supports_transactions = True

    @pytest.fixture
    def _bind(self, embedded_backend: Any) -> None:
        self.backend = embedded_backend

    def create_backend(self) -> Any:
        return self.backend


class TestQueryPersistenceOnMotor(QueryPersistenceContract):
    supports_transactions = True

    @pytest.fixture
    def _bind(self, motor_backend: Any) -> None:
        self.backend = motor_backend

    def create_backend(self) -> Any:
        return self.backend
