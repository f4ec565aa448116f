"""Keyset pages on the embedded server: the union of the pages is the one sorted query.

Every BSON value that can be a sort key pages exactly (NaN, infinities, MinKey, MaxKey, null,
missing, mixed types); a sort path that reaches an array is refused with a clear error on the
page that meets it, never looped over or silently repeated.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import MaxKey, MinKey, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient
from pymongo.collection import Collection

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.mongo.codecs import CLIENT_CODEC_KWARGS
from cqrs_mongo.mongo.queries.keyset import check_keyset_rows, encode_cursor, page_cursor
from cqrs_mongo.mongo.queries.query_compiler import compile_query
from cqrs_mongo.specifications import QueryOptions

NAN = float("nan")


@pytest.fixture(scope="module")
def collection(mongo_server: Any) -> Iterator[Collection[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_server.uri, **CLIENT_CODEC_KWARGS)
    try:
        yield client["keyset_pagination"]["docs"]
    finally:
        client.drop_database("keyset_pagination")
        client.close()


def _reset(collection: Collection[dict[str, Any]], docs: list[dict[str, Any]]) -> None:
    collection.delete_many({})
    collection.insert_many(docs)


def _everything(collection: Collection[dict[str, Any]], options: QueryOptions) -> list[Any]:
    return [d["_id"] for d in collection.find(**compile_query(options).find_kwargs())]


def _pages(
    collection: Collection[dict[str, Any]],
    options: QueryOptions,
    limit: int,
    budget: int,
    pages: list[list[Any]] | None = None,
) -> list[list[Any]]:
    """Follow next-page cursors as a read model's ``page()`` does, at most ``budget`` pages."""
    pages = [] if pages is None else pages
    page_options = options.with_pagination(limit=limit)
    for _ in range(budget):
        rows = list(collection.find(**compile_query(page_options).find_kwargs()))
        check_keyset_rows(rows, page_options)
        pages.append([row["_id"] for row in rows])
        token = page_cursor(rows, page_options)
        if token is None:
            return pages
        page_options = page_options.with_cursor(token)
    raise AssertionError(f"pagination did not end within {budget} pages: {pages}")


ISSUE_ROWS: list[dict[str, Any]] = [
    {"_id": 1, "m": [{"r": 5}, {"r": 1}]},
    {"_id": 2, "m": {"r": 3}},
    {"_id": 3, "m": {"r": 4}},
]


def test_a_dotted_sort_key_through_an_array_is_refused_not_looped(
    collection: Collection[dict[str, Any]],
) -> None:
    _reset(collection, [dict(row) for row in ISSUE_ROWS])
    options = QueryOptions().with_ordering("m.r")

    with pytest.raises(InvalidSpecificationError, match=r"'m\.r' reaches an array"):
        _pages(collection, options, limit=1, budget=10)


def test_an_array_row_met_after_a_cursor_is_refused_not_repeated(
    collection: Collection[dict[str, Any]],
) -> None:
    # Ascending, the array row sorts first (its smallest element); a cursor taken from a
    # scalar row would match it again through its larger element.
    _reset(collection, [dict(row) for row in ISSUE_ROWS])
    options = QueryOptions().with_ordering("m.r").with_pagination(limit=2)
    first = list(collection.find(**compile_query(options.with_pagination(limit=1)).find_kwargs()))
    assert [row["_id"] for row in first] == [1]
    # A cursor issued for row 2 (as a caller holding an older token would have it).
    token = encode_cursor({"_id": 2, "m": {"r": 3}}, options)
    rows = list(collection.find(**compile_query(options.with_cursor(token)).find_kwargs()))

    with pytest.raises(InvalidSpecificationError, match="reaches an array"):
        check_keyset_rows(rows, options.with_cursor(token))


SPECIAL = [NAN, 1, 2, -math.inf, math.inf, MinKey(), MaxKey(), None, "s", 0.5, NAN, MinKey()]


@pytest.mark.parametrize("ordering", ["v", "-v"])
@pytest.mark.parametrize("limit", [1, 2, 3])
def test_nan_infinities_minkey_and_maxkey_page_exactly(
    collection: Collection[dict[str, Any]], ordering: str, limit: int
) -> None:
    docs: list[dict[str, Any]] = [{"_id": i, "v": v} for i, v in enumerate(SPECIAL)]
    docs.append({"_id": len(docs)})  # missing sorts with null
    _reset(collection, docs)
    options = QueryOptions().with_ordering(ordering)

    pages = _pages(collection, options, limit, budget=len(docs) + 2)

    assert [i for page in pages for i in page] == _everything(collection, options)


# --- the property: any documents, any ordering, any page size -----------------------------

BASE = datetime(2024, 5, 1, tzinfo=UTC)
SORT_VALUES = st.one_of(
    st.sampled_from(
        [NAN, -math.inf, math.inf, MinKey(), MaxKey(), None, 0, 1, 1.0, 2.5, -3, True, False]
    ),
    st.sampled_from(["", "a", "b", "ab"]),
    st.integers(0, 2).map(lambda d: BASE + timedelta(days=d)),
    st.sampled_from([ObjectId("65f000000000000000000001"), ObjectId("65f000000000000000000002")]),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 1), max_size=1),
)
MISSING_OR = st.one_of(st.just(...), SORT_VALUES)


@st.composite
def _documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 9))
    docs = []
    for i in range(count):
        doc: dict[str, Any] = {"_id": i}
        for name in ("v", "w"):
            value = draw(MISSING_OR)
            if value is not ...:
                doc[name] = value
        shape = draw(st.sampled_from(["missing", "doc", "array", "scalar"]))
        if shape == "doc":
            doc["m"] = {"r": draw(SORT_VALUES)}
        elif shape == "array":
            doc["m"] = draw(st.lists(st.fixed_dictionaries({"r": SORT_VALUES}), max_size=2))
        elif shape == "scalar":
            doc["m"] = draw(SORT_VALUES)
        docs.append(doc)
    return docs


ORDERINGS = [("v",), ("-v",), ("v", "-w"), ("-w", "v"), ("m.r",), ("-m.r",), ("m.r", "-v")]


def _reaches_array(doc: dict[str, Any], path: str) -> bool:
    current: Any = doc
    for segment in path.split("."):
        if isinstance(current, list):
            return True
        if not isinstance(current, dict) or segment not in current:
            return False
        current = current[segment]
    return isinstance(current, list)


@settings(
    max_examples=int(os.environ.get("KEYSET_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(docs=_documents(), ordering=st.sampled_from(ORDERINGS), limit=st.integers(1, 4))
def test_union_of_pages_is_the_sorted_query(
    collection: Collection[dict[str, Any]],
    docs: list[dict[str, Any]],
    ordering: tuple[str, ...],
    limit: int,
) -> None:
    _reset(collection, docs)
    options = QueryOptions().with_ordering(*ordering)
    everything = _everything(collection, options)
    fields = [key.lstrip("-") for key in ordering]
    has_array = any(_reaches_array(doc, field) for doc in docs for field in fields)

    pages: list[list[Any]] = []
    refused: InvalidSpecificationError | None = None
    try:
        _pages(collection, options, limit, budget=len(docs) + 2, pages=pages)
    except InvalidSpecificationError as exc:
        refused = exc
    paged = [i for page in pages for i in page]
    if refused is None:
        assert paged == everything
    else:
        assert has_array, refused
        assert "reaches an array" in str(refused)
        # Every page returned before the refusal is exactly the start of the sorted query.
        assert paged == everything[: len(paged)]
