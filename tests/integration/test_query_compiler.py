"""Compiled queries on the embedded server: injection safety, Decimal ordering, keyset paging."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from bson import Regex

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.mongo.queries.query_compiler import compile_filter, compile_query, encode_cursor
from cqrs_mongo.specifications import (
    Condition,
    QueryOptions,
    Specification,
    SpecificationBuilder,
)


async def _ids(collection: Any, spec: Specification) -> list[Any]:
    return sorted([doc["_id"] async for doc in collection.find(compile_filter(spec), {"_id": 1})])


async def test_operator_shaped_value_is_matched_literally(mongo_db: Any) -> None:
    docs = mongo_db["injection"]
    await docs.insert_many(
        [{"_id": 1, "f": "x"}, {"_id": 2, "f": None}, {"_id": 3}, {"_id": 4, "f": {"$ne": None}}]
    )
    spec = Condition("f", "=", {"$ne": None})

    assert await _ids(docs, spec) == [4]
    assert [d["_id"] for d in [await docs.find_one({"_id": 4})] if spec.is_satisfied_by(d)] == [4]


async def test_operator_shaped_value_in_a_list_is_literal(mongo_db: Any) -> None:
    docs = mongo_db["injection_list"]
    await docs.insert_many([{"_id": 1, "f": ["x"]}, {"_id": 2, "f": [{"$gt": ""}]}])

    assert await _ids(docs, Condition("f", "=", [{"$gt": ""}])) == [2]


@pytest.mark.parametrize("field", ["$where", "a.$b", "$expr", "a..b", "", "a\x00b"])
def test_operator_field_names_are_rejected(field: str) -> None:
    with pytest.raises(InvalidSpecificationError, match="Field name"):
        Condition(field, "=", 1)
    with pytest.raises(InvalidSpecificationError, match="Field name"):
        Condition.from_dict({"field": field, "op": "=", "value": 1})


@pytest.mark.parametrize(
    ("operator", "text", "expected"),
    [
        ("contains", "a.c", [2]),
        ("contains", ".*", [3]),
        ("contains", "(x+", [4]),
        ("startswith", "a.", [2]),
        ("endswith", "$", [5]),
        ("icontains", "A.C", [2]),
        ("like", "a_c", [1, 2]),
        ("like", "a\\_c", []),
        ("like", "%+", [4]),
    ],
)
async def test_regex_metacharacters_match_literally(
    mongo_db: Any, operator: str, text: str, expected: list[int]
) -> None:
    docs = mongo_db["regex"]
    await docs.insert_many(
        [
            {"_id": 1, "s": "abc"},
            {"_id": 2, "s": "a.c"},
            {"_id": 3, "s": "x.*y"},
            {"_id": 4, "s": "(x+"},
            {"_id": 5, "s": "cost $"},
        ]
    )
    spec = Condition("s", operator, text)

    assert await _ids(docs, spec) == expected
    assert sorted([d["_id"] async for d in docs.find() if spec.is_satisfied_by(d)]) == expected


def test_a_ten_thousand_character_pattern_is_rejected() -> None:
    with pytest.raises(InvalidSpecificationError, match="10000 characters long; at most 1000"):
        Condition("s", "contains", "x" * 10_000)


async def test_decimal_ordering_agrees_with_numbers(mongo_db: Any) -> None:
    docs = mongo_db["decimals"]
    values = [Decimal("1.10"), 2, 1.5, Decimal("0.3"), Decimal("-7"), 1, Decimal("1.2")]
    await docs.insert_many([{"_id": i, "p": v} for i, v in enumerate(values)])
    stored = [doc async for doc in docs.find()]

    for spec in (Condition("p", ">", Decimal("1.2")), Condition("p", "between", [1, 1.5])):
        assert await _ids(docs, spec) == sorted(d["_id"] for d in stored if spec.is_satisfied_by(d))
    assert await _ids(docs, Condition("p", ">", Decimal("1.2"))) == [1, 2]

    query = compile_query(QueryOptions().with_ordering("-p"))
    ordered = [doc["p"] async for doc in docs.find(**query.find_kwargs())]
    assert ordered == sorted(values, reverse=True)


SCORES: list[Any] = [3, None, 1, "b", 3, 2.5, None, 1, "a", 3, Decimal("2.5"), 0, "b", 2]


def _paging_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i in range(42):
        doc: dict[str, Any] = {"_id": i, "name": ["x", "y", None][i % 3], "g": i % 2}
        score = SCORES[i % len(SCORES)]
        if i % 5 != 4:  # every fifth document has no score at all
            doc["score"] = score
        if i % 7 == 0:
            doc["at"] = datetime(2024, 1, 1 + i % 3, tzinfo=UTC)
        docs.append(doc)
    return docs


@pytest.mark.parametrize(
    "ordering",
    [
        ("score",),
        ("-score",),
        ("score", "-name"),
        ("-score", "name"),
        ("name", "-at", "score"),
        ("-g", "-_id"),
        (),
    ],
)
@pytest.mark.parametrize("page_size", [1, 4, 7])
async def test_keyset_pages_return_every_row_once_in_sort_order(
    mongo_db: Any, ordering: tuple[str, ...], page_size: int
) -> None:
    docs = mongo_db["paging"]
    await docs.insert_many(_paging_docs())
    spec = SpecificationBuilder().where("_id", "<", 40).build()
    options = QueryOptions().with_specification(spec).with_ordering(*ordering)
    everything = [d["_id"] async for d in docs.find(**compile_query(options).find_kwargs())]

    paged: list[Any] = []
    page_options = options.with_pagination(limit=page_size)
    for _ in range(60):
        page = [d async for d in docs.find(**compile_query(page_options).find_kwargs())]
        paged.extend(d["_id"] for d in page)
        if len(page) < page_size:
            break
        page_options = page_options.with_cursor(encode_cursor(page[-1], page_options))

    assert len(everything) == 40
    assert paged == everything


async def test_pipeline_total_counts_all_matches_while_paging(mongo_db: Any) -> None:
    docs = mongo_db["facet"]
    await docs.insert_many(_paging_docs())
    options = (
        QueryOptions()
        .with_specification(Condition("g", "=", 1))
        .with_ordering("-score")
        .with_pagination(limit=5)
        .with_fields("score")
    )
    first = compile_query(options)
    rows = await (await docs.aggregate(first.pipeline(with_total=True))).to_list()
    items, total = first.unpack_facet(rows[0] if rows else None)
    second = compile_query(options.with_cursor(encode_cursor(items[-1], options)))
    rows = await (await docs.aggregate(second.pipeline(with_total=True))).to_list()
    more, total_again = second.unpack_facet(rows[0] if rows else None)

    assert (total, total_again) == (21, 21)
    assert len(items) == len(more) == 5
    assert set(items[0]) <= {"_id", "score"}
    assert not {d["_id"] for d in items} & {d["_id"] for d in more}


async def test_pipeline_total_is_zero_when_nothing_matches(mongo_db: Any) -> None:
    query = compile_query(QueryOptions(specification=Condition("g", "=", 9)))
    rows = await (await mongo_db["empty"].aggregate(query.pipeline(with_total=True))).to_list()

    assert query.unpack_facet(rows[0] if rows else None) == ([], 0)


@pytest.mark.parametrize("pattern", ["%a" * 12 + "%b", "%a" * 20 + "%b", "_%" * 15 + "b"])
async def test_hostile_like_patterns_run_in_linear_time_on_the_server(
    mongo_db: Any, pattern: str
) -> None:
    docs = mongo_db["redos"]
    await docs.insert_many([{"_id": 1, "s": "a" * 30}, {"_id": 2, "s": "a" * 30 + "b"}])

    started = time.perf_counter()
    assert await _ids(docs, Condition("s", "like", pattern)) == [2]
    assert await _ids(docs, Condition("s", "ilike", pattern.upper())) == [2]
    # Backtracking took 5 s for the first pattern and 30 s for the second.
    assert time.perf_counter() - started < 3.0


@pytest.mark.parametrize(
    ("operator", "text"),
    [
        ("contains", "a"),
        ("icontains", "a"),
        ("contains", "a.b"),
        ("startswith", "a"),
        ("like", "a%"),
        ("contains", "b"),
    ],
)
async def test_stored_regular_expressions_match_as_on_the_server(
    mongo_db: Any, operator: str, text: str
) -> None:
    docs = mongo_db["stored_regex"]
    spec = Condition("s", operator, text)
    pattern = compile_filter(spec)["s"]["$regex"]
    await docs.insert_many(
        [
            {"_id": 1, "s": Regex("a")},
            {"_id": 2, "s": Regex("a", "i")},
            {"_id": 3, "s": Regex(pattern)},  # the very pattern the operator sends
            {"_id": 4, "s": Regex(pattern, "i")},
            {"_id": 5, "s": [Regex(pattern), "zzz"]},
            {"_id": 6, "s": "a.b"},
            {"_id": 7, "s": Regex("x")},
        ]
    )
    stored = [doc async for doc in docs.find()]

    on_server = await _ids(docs, spec)
    assert sorted(d["_id"] for d in stored if spec.is_satisfied_by(d)) == on_server
    # A stored regex equal to the pattern and options the operator sends matches.
    assert (4 if operator.startswith("i") else 3) in on_server
