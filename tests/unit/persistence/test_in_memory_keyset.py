"""Keyset pages in memory: MongoDB's sort order, exact across NaN, null and missing values."""

from __future__ import annotations

import math

import pytest
from pydantic import BaseModel

from cqrs_mongo import InMemoryQueryPersistence, InMemoryUnitOfWorkFactory, QueryOptions
from cqrs_mongo.errors import InvalidSpecificationError

NAN = float("nan")


class Scored(BaseModel):
    id: str
    score: float | None = None
    tags: list[str] = []


class ScoredReads(InMemoryQueryPersistence[Scored, str]):
    dto_type = Scored
    collection = "scored"


SCORES = [NAN, 1, 2, None, -math.inf, math.inf, 1, NAN, None, 0.5]


async def _factory() -> InMemoryUnitOfWorkFactory:
    factory = InMemoryUnitOfWorkFactory()
    async with factory() as uow:
        for n, score in enumerate(SCORES):
            await ScoredReads().save(Scored(id=f"s{n}", score=score), uow)
    return factory


async def test_rows_are_ordered_as_mongodb_orders_them() -> None:
    factory = await _factory()
    async with factory() as uow:
        found = await (await ScoredReads().fetch(QueryOptions().with_ordering("score"), uow))
    # Null first, then NaN below every other number, ties broken by id ascending.
    assert [s.id for s in found] == ["s3", "s8", "s0", "s7", "s4", "s9", "s1", "s6", "s2", "s5"]


@pytest.mark.parametrize("ordering", ["score", "-score"])
@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_pages_follow_the_cursor_exactly(ordering: str, limit: int) -> None:
    factory = await _factory()
    base = QueryOptions().with_ordering(ordering)
    async with factory() as uow:
        everything = [s.id for s in await (await ScoredReads().fetch(base, uow))]
        options = base.with_pagination(limit=limit)
        seen: list[str] = []
        for _ in range(len(SCORES) + 2):
            page = await (await ScoredReads().fetch(options, uow)).page()
            assert page.total == len(SCORES)
            seen.extend(s.id for s in page.items)
            if page.next_cursor is None:
                break
            options = options.with_cursor(page.next_cursor)
    assert seen == everything


async def test_a_cursor_for_another_ordering_or_a_garbled_one_is_refused() -> None:
    factory = await _factory()
    options = QueryOptions().with_ordering("score").with_pagination(limit=2)
    async with factory() as uow:
        page = await (await ScoredReads().fetch(options, uow)).page()
        assert page.next_cursor is not None
        other = QueryOptions().with_ordering("-score").with_pagination(limit=2)
        with pytest.raises(InvalidSpecificationError, match="issued for ordering"):
            await ScoredReads().fetch(other.with_cursor(page.next_cursor), uow)
        with pytest.raises(InvalidSpecificationError, match="malformed"):
            await ScoredReads().fetch(options.with_cursor("not-a-token"), uow)


async def test_a_sort_path_reaching_an_array_is_refused_for_keyset_pages() -> None:
    factory = InMemoryUnitOfWorkFactory()
    async with factory() as uow:
        await ScoredReads().save(Scored(id="a", tags=["x", "y"]), uow)
        await ScoredReads().save(Scored(id="b", tags=["z"]), uow)
        options = QueryOptions().with_ordering("tags").with_pagination(limit=1)
        result = await ScoredReads().fetch(options, uow)
        assert len(await result) == 1  # offset pages still work
        with pytest.raises(InvalidSpecificationError, match="reaches an array"):
            await result.page()
