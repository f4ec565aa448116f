"""The read-model ports behave the same in memory and on MongoDB.

Ids, specifications with ordering and offset pages, counts, first rows, pages with totals and
streams, bound to the in-memory adapters, mongomock-motor and the embedded server.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from cqrs_mongo import (
    InMemoryQueryPersistence,
    InMemoryUnitOfWorkFactory,
    MongomockLimitError,
    PersistenceDispatcher,
    PersistenceRegistry,
    QueryOptions,
    SpecificationBuilder,
)
from cqrs_mongo.mongo import MongoReadModelPersistence

START = datetime(2026, 3, 1, tzinfo=UTC)


class Summary(BaseModel):
    id: str
    customer_id: str
    status: str
    total: Decimal
    created_at: datetime
    tags: list[str] = []


class InMemorySummaries(InMemoryQueryPersistence[Summary, str]):
    dto_type = Summary
    collection = "summaries"


class MongoSummaries(MongoReadModelPersistence[Summary, str]):
    dto_type = Summary
    collection = "summaries"


def rows() -> list[Summary]:
    return [
        Summary(
            id=f"o{n}",
            customer_id="c1" if n % 3 else "c2",
            status="submitted" if n % 2 else "created",
            total=Decimal(n) + Decimal("0.50"),
            created_at=START + timedelta(minutes=n),
            tags=["vip"] if n % 4 == 0 else [],
        )
        for n in range(12)
    ]


class ReadModelPortContract(ABC):
    @abstractmethod
    async def seed(self, summaries: list[Summary]) -> None: ...

    @abstractmethod
    def create_factory(self) -> Any: ...

    @abstractmethod
    def handler_class(self) -> type[Any]: ...

    async def dispatcher(self) -> PersistenceDispatcher:
        await self.seed(rows())
        registry = PersistenceRegistry()
        registry.register_query(Summary, self.handler_class())
        registry.register_query_spec(Summary, self.handler_class())
        return PersistenceDispatcher({"default": self.create_factory()}, registry)

    async def test_by_ids_in_the_order_asked(self) -> None:
        dispatcher = await self.dispatcher()
        found = await (await dispatcher.fetch(Summary, ["o5", "nope", "o1", "o5"]))
        assert [s.id for s in found] == ["o5", "o1"]
        assert found[0].total == Decimal("5.50")

    async def test_specification_ordering_offset_count_first_page_stream(self) -> None:
        dispatcher = await self.dispatcher()
        spec = (
            SpecificationBuilder()
            .where("customer_id", "=", "c1")
            .where("status", "=", "submitted")
            .build()
        )
        base = QueryOptions().with_specification(spec).with_ordering("-created_at")
        everything = [s.id for s in await (await dispatcher.fetch(Summary, base))]
        assert everything == ["o11", "o7", "o5", "o1"]

        paged = await dispatcher.fetch(Summary, base.with_pagination(limit=2, offset=1))
        assert [s.id for s in await paged] == ["o7", "o5"]
        assert await paged.count() == 4
        first = await paged.first()
        assert first is not None
        assert first.id == "o7"
        page = await paged.page()
        assert ([s.id for s in page.items], page.total) == (["o7", "o5"], 4)
        assert [s.id async for s in (await dispatcher.fetch(Summary, base)).stream(3)] == (
            everything
        )

    async def test_arrays_ranges_and_negation(self) -> None:
        dispatcher = await self.dispatcher()
        vip = SpecificationBuilder().where("tags", "=", "vip").build()
        # A date range: mongomock cannot compare Decimal128 values.
        window = [START + timedelta(minutes=2), START + timedelta(minutes=6)]
        cheap = SpecificationBuilder().where("created_at", "between", window)
        spec = vip | ~cheap.build()
        options = QueryOptions().with_specification(spec).with_ordering("created_at")
        found = [s.id for s in await (await dispatcher.fetch(Summary, options))]
        assert found == ["o0", "o1", "o4", "o7", "o8", "o9", "o10", "o11"]

    keyset_cursors: bool = True

    async def test_keyset_pages_follow_the_next_cursor(self) -> None:
        dispatcher = await self.dispatcher()
        base = QueryOptions().with_ordering("status", "-created_at")
        everything = [s.id for s in await (await dispatcher.fetch(Summary, base))]
        options = base.with_pagination(limit=5)
        first = await (await dispatcher.fetch(Summary, options)).page()
        assert [s.id for s in first.items] == everything[:5]
        assert first.next_cursor is not None
        if not self.keyset_cursors:
            following = await dispatcher.fetch(Summary, options.with_cursor(first.next_cursor))
            with pytest.raises(MongomockLimitError, match="keyset"):
                await following.page()
            return
        seen = [s.id for s in first.items]
        page = first
        while page.next_cursor is not None:
            options = options.with_cursor(page.next_cursor)
            page = await (await dispatcher.fetch(Summary, options)).page()
            assert page.total == 12
            seen.extend(s.id for s in page.items)
            assert len(seen) <= 12
        assert seen == everything


class TestReadModelInMemory(ReadModelPortContract):
    @pytest.fixture(autouse=True)
    def _bind(self) -> None:
        self.factory = InMemoryUnitOfWorkFactory()

    async def seed(self, summaries: list[Summary]) -> None:
        async with self.factory() as uow:
            for summary in summaries:
                await InMemorySummaries().save(summary, uow)

    def create_factory(self) -> Any:
        return self.factory

    def handler_class(self) -> type[Any]:
        return InMemorySummaries


class MongoReadModelPort(ReadModelPortContract):
    backend: Any

    async def seed(self, summaries: list[Summary]) -> None:
        documents = []
        for summary in summaries:
            document = summary.model_dump()
            document["_id"] = document.pop("id")
            documents.append(document)
        await self.backend.database["summaries"].insert_many(documents)

    def create_factory(self) -> Any:
        return self.backend.factory()

    def handler_class(self) -> type[Any]:
        return MongoSummaries


class TestReadModelOnMongomock(MongoReadModelPort):
    keyset_cursors = False

    @pytest.fixture(autouse=True)
    def _bind(self, mongomock_backend: Any) -> None:
        self.backend = mongomock_backend


class TestReadModelOnEmbeddedServer(MongoReadModelPort):
    @pytest.fixture(autouse=True)
    def _bind(self, embedded_backend: Any) -> None:
        self.backend = embedded_backend
