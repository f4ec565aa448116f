"""The ready-made logging hook and SearchResult's contract."""

from __future__ import annotations

import logging

import pytest

from cqrs_mongo import Hooks, LoggingHook, SearchResult


async def test_logging_hook_logs_outcome_and_duration(caplog: pytest.LogCaptureFixture) -> None:
    hooks = Hooks([LoggingHook(level=logging.INFO)])
    caplog.set_level(logging.DEBUG, logger="cqrs_mongo")
    async with hooks.span("fetch_domain", int, ids=["a", "b"], source="default"):
        pass
    with pytest.raises(ValueError, match="nope"):
        async with hooks.span("apply", str, ids=["x"]):
            raise ValueError("nope")
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert messages[0] == (logging.DEBUG, "fetch_domain int ids=['a', 'b'] started")
    assert messages[1][0] == logging.INFO
    assert messages[1][1].startswith("fetch_domain int ids=['a', 'b'] took ")
    assert messages[3][0] == logging.WARNING
    assert "apply str ids=['x'] failed after" in messages[3][1]
    assert "ValueError('nope')" in messages[3][1]


async def test_search_result_runs_its_loader_on_each_await_only() -> None:
    runs = 0

    async def load() -> list[int]:
        nonlocal runs
        runs += 1
        return [1, 2, 3]

    result = SearchResult(load)
    assert runs == 0
    assert await result == [1, 2, 3]
    assert await result.all() == [1, 2, 3]
    assert runs == 2
    assert await result.count() == 3
    assert await result.first() == 1
    assert [x * 10 for x in await result.map(lambda x: x + 1)] == [20, 30, 40]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
async def test_stream_rejects_a_batch_size_that_is_not_a_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        async for _ in SearchResult.of([1]).stream(batch_size=bad):  # type: ignore[arg-type]
            pass


async def test_first_of_an_empty_result_is_none() -> None:
    assert await SearchResult.of([]).first() is None
    assert await SearchResult.of([]).count() == 0


async def test_page_defaults_to_the_items_and_the_stores_count() -> None:
    async def load() -> list[int]:
        return [1, 2]

    async def count() -> int:
        return 7

    page = await SearchResult(load, count=count).page()
    assert (page.items, page.total, page.next_cursor) == ([1, 2], 7, None)
