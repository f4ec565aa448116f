"""The Mongo query compiler's output, without a server: shapes, safety, ordering, cursors."""

from __future__ import annotations

import base64
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import bson
import pytest
from bson import ObjectId

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.mongo.queries import query_compiler
from cqrs_mongo.mongo.queries.query_compiler import (
    CompiledQuery,
    compile_filter,
    compile_query,
    decode_cursor,
    encode_cursor,
)
from cqrs_mongo.specifications import Condition, QueryOptions, Specification

C = Condition


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (C("a", "=", 1), {"a": 1}),
        (C("a", "=", None), {"a": None}),
        (C("a", "=", {"$ne": None}), {"a": {"$eq": {"$ne": None}}}),
        (C("a", "=", [1, {"$gt": 0}]), {"a": {"$eq": [1, {"$gt": 0}]}}),
        (C("a", "!=", 1), {"a": {"$ne": 1}}),
        (C("a", ">", 1), {"a": {"$gt": 1}}),
        (C("a", ">=", 1), {"a": {"$gte": 1}}),
        (C("a", "<", 1), {"a": {"$lt": 1}}),
        (C("a", "<=", 1), {"a": {"$lte": 1}}),
        (C("a", "in", (1, 2)), {"a": {"$in": [1, 2]}}),
        (C("a", "not_in", [1]), {"a": {"$nin": [1]}}),
        (C("a", "between", [1, 5]), {"a": {"$gte": 1, "$lte": 5}}),
        (C("a", "not_between", [1, 5]), {"a": {"$not": {"$gte": 1, "$lte": 5}}}),
        (C("a", "contains", "x.(y"), {"a": {"$regex": r"x\.\(y"}}),
        (C("a", "icontains", "x"), {"a": {"$regex": "x", "$options": "i"}}),
        (C("a", "startswith", "a.b"), {"a": {"$regex": r"^a\.b"}}),
        (C("a", "istartswith", "ab"), {"a": {"$regex": "^ab", "$options": "i"}}),
        (C("a", "endswith", "$"), {"a": {"$regex": r"\$(?![\s\S])"}}),
        (C("a", "like", "a%_"), {"a": {"$regex": r"^a[\s\S]*[\s\S](?![\s\S])"}}),
        (C("a", "ilike", "a\\%"), {"a": {"$regex": r"^a%(?![\s\S])", "$options": "i"}}),
        (C("a", "is_null"), {"a": {"$eq": None}}),
        (C("a", "is_null", False), {"a": {"$ne": None}}),
        (C("a", "is_not_null"), {"a": {"$ne": None}}),
        (C("a", "exists", False), {"a": {"$exists": False}}),
        (C("a", "all", ["x", "y"]), {"a": {"$all": ["x", "y"]}}),
        (C("a", "all", [None, "y"]), {"a": {"$all": ["y"], "$eq": None}}),
        (C("a", "size", 2), {"a": {"$size": 2}}),
        (C("l", "elem_match", C("q", ">", 1)), {"l": {"$elemMatch": {"q": {"$gt": 1}}}}),
        (
            C("l", "elem_match", C("q", ">", 1) | C("p", "=", 2)),
            {
                "l": {
                    "$elemMatch": {"q": {"$not": {"$in": []}}, "$or": [{"q": {"$gt": 1}}, {"p": 2}]}
                }
            },
        ),
        (~C("a", "=", 1), {"$nor": [{"a": 1}]}),
        (C("a", "=", 1) | C("b", "=", 2), {"$or": [{"a": 1}, {"b": 2}]}),
    ],
)
def test_each_operator_compiles_to_its_mongo_form(
    spec: Specification, expected: dict[str, Any]
) -> None:
    assert compile_filter(spec) == expected


def test_nothing_compiles_to_match_all() -> None:
    assert compile_filter(None) == {}
    assert (
        compile_filter(Condition("a", "=", 1) & Condition("b", "=", 2) & Condition("a", ">", 0))
        != {}
    )


def test_and_merges_into_one_filter_where_fields_do_not_collide() -> None:
    spec = C("a", ">", 1) & C("b", "=", 2) & C("a", "<", 5) & (C("c", "=", 1) | C("d", "=", 1))

    assert compile_filter(spec) == {
        "a": {"$gt": 1, "$lt": 5},
        "b": 2,
        "$or": [{"c": 1}, {"d": 1}],
    }


def test_colliding_clauses_go_into_and() -> None:
    spec = C("a", "=", 1) & C("a", "!=", 2) & C("s", "contains", "x") & C("s", "contains", "y")
    spec = spec & (C("c", "=", 1) | C("d", "=", 1)) & (C("e", "=", 1) | C("f", "=", 1))

    assert compile_filter(spec) == {
        "a": 1,
        "s": {"$regex": "x"},
        "$or": [{"c": 1}, {"d": 1}],
        "$and": [{"a": {"$ne": 2}}, {"s": {"$regex": "y"}}, {"$or": [{"e": 1}, {"f": 1}]}],
    }


def test_an_unknown_node_is_an_error_naming_it() -> None:
    @dataclass(frozen=True)
    class Sneaky(Specification):
        raw: str = "{'$where': 'sleep(1000)'}"

    with pytest.raises(
        InvalidSpecificationError, match=r"Cannot compile .*Sneaky: not a specification node"
    ):
        compile_filter(Sneaky())
    with pytest.raises(
        InvalidSpecificationError, match=r"Cannot compile .*Sneaky: not a specification node"
    ):
        compile_filter(C("a", "=", 1) & Sneaky())


def test_operator_emitters_document_the_mongo_they_emit() -> None:
    emitters = set(query_compiler._OPERATORS.values())
    for emitter in emitters:
        doc = emitter.__doc__ or query_compiler.emit_simple.__doc__
        assert "->" in doc, emitter
        assert '{"$' in doc, emitter


def test_compile_query_orders_paginates_and_projects() -> None:
    options = (
        QueryOptions()
        .with_specification(C("status", "=", "open"))
        .with_ordering("-created_at", "name")
        .with_pagination(limit=10, offset=20)
        .with_fields("name", "total")
    )
    query = compile_query(options)

    assert query == CompiledQuery(
        filter={"status": "open"},
        sort=[("created_at", -1), ("name", 1), ("_id", 1)],
        skip=20,
        limit=10,
        projection={"name": 1, "total": 1, "created_at": 1, "_id": 1},
    )
    assert query.find_kwargs() == {
        "filter": {"status": "open"},
        "sort": [("created_at", -1), ("name", 1), ("_id", 1)],
        "skip": 20,
        "limit": 10,
        "projection": {"name": 1, "total": 1, "created_at": 1, "_id": 1},
    }
    assert query.pipeline() == [
        {"$match": {"status": "open"}},
        {"$sort": {"created_at": -1, "name": 1, "_id": 1}},
        {"$skip": 20},
        {"$limit": 10},
        {"$project": {"name": 1, "total": 1, "created_at": 1, "_id": 1}},
    ]
    assert query.pipeline(with_total=True) == [
        {"$match": {"status": "open"}},
        {
            "$facet": {
                "items": [
                    {"$sort": {"created_at": -1, "name": 1, "_id": 1}},
                    {"$skip": 20},
                    {"$limit": 10},
                    {"$project": {"name": 1, "total": 1, "created_at": 1, "_id": 1}},
                ],
                "total": [{"$count": "n"}],
            }
        },
    ]


def test_projection_keeps_sort_fields_without_overlapping_paths() -> None:
    options = QueryOptions().with_fields("address", "name").with_ordering("address.city", "-at")

    assert compile_query(options).projection == {"address": 1, "name": 1, "at": 1, "_id": 1}


def test_a_given_id_ordering_is_kept_and_a_bare_specification_is_accepted() -> None:
    assert compile_query(QueryOptions().with_ordering("-_id", "a")).sort == [("_id", -1), ("a", 1)]
    assert compile_query(C("a", "=", 1)).find_kwargs()["limit"] == 0  # type: ignore[arg-type]


def test_unpack_facet_treats_a_missing_total_as_zero() -> None:
    assert CompiledQuery.unpack_facet(None) == ([], 0)
    assert CompiledQuery.unpack_facet({"items": [], "total": []}) == ([], 0)
    assert CompiledQuery.unpack_facet({"items": [{"_id": 1}], "total": [{"n": 7}]}) == (
        [{"_id": 1}],
        7,
    )


def test_cursor_tokens_keep_value_types() -> None:
    options = QueryOptions().with_ordering("at", "-price", "ref", "gone")
    row = {
        "_id": ObjectId(),
        "at": datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
        "price": Decimal("10.50"),
        "ref": uuid.uuid4(),
    }
    token = encode_cursor(row, options)

    assert token.isascii()
    assert "=" not in token
    assert decode_cursor(token, options) == (row["at"], row["price"], row["ref"], None, row["_id"])


def test_keyset_filter_after_the_last_row() -> None:
    options = QueryOptions(specification=C("status", "=", "open")).with_ordering("-score")
    token = encode_cursor({"_id": 7, "score": 3}, options)
    query = compile_query(options.with_pagination(limit=5).with_cursor(token))

    assert query.skip == 0
    assert query.count_filter == {"status": "open"}
    later_types = [
        "string",
        "symbol",
        "object",
        "binData",
        "objectId",
        "bool",
        "date",
        "timestamp",
        "regex",
        "maxKey",
    ]
    branches = query.filter["$or"]
    assert query.filter["status"] == "open"
    assert math.isnan(branches.pop(1)["score"]["$eq"])  # NaN sorts below every number
    assert branches == [
        {"score": {"$lt": 3}},
        {"score": {"$eq": None}},
        {"score": {"$type": ["minKey"]}},
        {"score": {"$eq": 3}, "_id": {"$gt": 7}},
        {"score": {"$eq": 3}, "_id": {"$type": later_types}},
        {"score": {"$type": "array"}},  # refused when met, see check_keyset_rows
    ]


LATER_THAN_NUMBER = [
    "string",
    "symbol",
    "object",
    "binData",
    "objectId",
    "bool",
    "date",
    "timestamp",
    "regex",
    "maxKey",
]


def test_keyset_filter_after_a_null_sort_value() -> None:
    options = QueryOptions().with_ordering("score")
    token = encode_cursor({"_id": "k", "score": None}, options)

    branches = compile_query(options.with_cursor(token)).filter["$or"]

    # Not {"$ne": None}: MinKey sorts before null.
    assert branches[0] == {"score": {"$type": ["number", *LATER_THAN_NUMBER]}}
    assert branches[1] == {"score": {"$eq": None}, "_id": {"$gt": "k"}}


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("not base64!", "malformed"),
        (base64.urlsafe_b64encode(b"garbage").decode(), "malformed"),
        (base64.urlsafe_b64encode(bson.encode({"v": 2})).decode(), "version 2"),
        (
            base64.urlsafe_b64encode(
                bson.encode({"v": 1, "o": [["x", 1], ["_id", 1]], "k": [1, 2]})
            ).decode(),
            "issued for ordering",
        ),
        (
            base64.urlsafe_b64encode(
                bson.encode({"v": 1, "o": [["a", 1], ["_id", 1]], "k": [1]})
            ).decode(),
            "wrong number of sort values",
        ),
        (
            base64.urlsafe_b64encode(
                bson.encode({"v": 1, "o": [["a", 1], ["_id", 1]], "k": [[1], 2]})
            ).decode(),
            "array sort value",
        ),
        (
            base64.urlsafe_b64encode(
                bson.encode({"v": 1, "o": [["a", 1], ["_id", 1]], "k": [bson.Regex(".*"), 2]})
            ).decode(),
            "unsupported type",
        ),
    ],
)
def test_bad_cursor_tokens_are_rejected(token: str, message: str) -> None:
    options = QueryOptions().with_ordering("a").with_cursor(token)

    with pytest.raises(InvalidSpecificationError, match=message):
        compile_query(options)


def test_cursor_needs_an_id_and_single_sort_values() -> None:
    options = QueryOptions().with_ordering("tags")

    with pytest.raises(InvalidSpecificationError, match="without '_id'"):
        encode_cursor({"tags": "a"}, options)
    with pytest.raises(InvalidSpecificationError, match="'tags' reaches an array"):
        encode_cursor({"_id": 1, "tags": ["a"]}, options)


@pytest.mark.parametrize(
    "value", [bson.MinKey(), bson.MaxKey(), float("nan"), float("-inf"), None, bson.Int64(7)]
)
def test_cursor_tokens_round_trip_every_single_sort_value(value: Any) -> None:
    options = QueryOptions().with_ordering("-score")
    token = encode_cursor({"_id": 1, "score": value}, options)

    decoded, row_id = query_compiler.decode_cursor(token, options)

    assert row_id == 1
    assert type(decoded) is type(value)
    assert decoded == value or (value != value and decoded != decoded)  # NaN
