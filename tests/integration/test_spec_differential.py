"""The compiled filter and ``is_satisfied_by`` accept exactly the same documents on a server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient
from pymongo.collection import Collection

from cqrs_mongo.mongo.codecs import CLIENT_CODEC_KWARGS
from cqrs_mongo.mongo.queries.query_compiler import compile_filter
from cqrs_mongo.specifications import And, Condition, Not, Operator, Or, Specification

# Small pools make collisions (equal values, shared prefixes) likely, which is where
# semantics differ. No Decimal here: the embedded server's Decimal-vs-double equality is
# looser than mongod's; Decimal ordering is tested in test_query_compiler.py.
BASE = datetime(2024, 5, 1, tzinfo=UTC)
NUMBERS = st.sampled_from([-2, 0, 1, 2, 0.0, 1.0, 1.5, 2.5, -0.5])
TEXT = st.text(alphabet="aAb.*+?()[]^$\\| %_\n", max_size=5)
DATES = st.integers(0, 3).map(lambda days: BASE + timedelta(days=days))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT, DATES)
LEAF_FIELDS = ("a", "b", "s")
SUB_FIELDS = ("x", "y")
ITEM_FIELDS = ("k", "v")

sub_documents = st.dictionaries(st.sampled_from(SUB_FIELDS), SCALARS, max_size=2)
item_lists = st.lists(
    st.dictionaries(st.sampled_from(ITEM_FIELDS), SCALARS, max_size=2), max_size=3
)
field_values = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), sub_documents)
documents = st.fixed_dictionaries(
    {},
    optional={
        "a": field_values,
        "b": field_values,
        "s": st.one_of(TEXT, st.lists(TEXT, max_size=2), st.none()),
        "sub": st.one_of(sub_documents, st.lists(sub_documents, max_size=2), st.none()),
        "items": st.one_of(item_lists, SCALARS),
    },
)

ALL_FIELDS = (*LEAF_FIELDS, "sub", "sub.x", "sub.y", "items", "items.k", "items.v")


def conditions(fields: tuple[str, ...], nested: bool) -> st.SearchStrategy[Specification]:
    field = st.sampled_from(fields)
    simple = st.sampled_from(
        [Operator.EQ, Operator.NE, Operator.GT, Operator.GE, Operator.LT, Operator.LE]
    )
    text_ops = st.sampled_from(
        [op for op in Operator if op.value.lstrip("i").endswith(("contains", "with", "like"))]
    )
    options = [
        st.builds(Condition, field, simple, SCALARS),
        st.builds(
            Condition,
            field,
            st.just(Operator.EQ),
            st.one_of(sub_documents, st.lists(SCALARS, max_size=2)),
        ),
        st.builds(
            Condition,
            field,
            st.sampled_from([Operator.IN, Operator.NOT_IN, Operator.ALL]),
            st.lists(SCALARS, max_size=3),
        ),
        st.builds(
            Condition,
            field,
            st.sampled_from([Operator.BETWEEN, Operator.NOT_BETWEEN]),
            st.tuples(NUMBERS, NUMBERS),
        ),
        st.builds(
            Condition,
            field,
            st.sampled_from([Operator.BETWEEN, Operator.NOT_BETWEEN]),
            st.tuples(DATES, DATES),
        ),
        st.builds(Condition, field, text_ops, TEXT),
        st.builds(
            Condition,
            field,
            st.sampled_from([Operator.IS_NULL, Operator.IS_NOT_NULL, Operator.EXISTS]),
            st.booleans(),
        ),
        st.builds(Condition, field, st.just(Operator.SIZE), st.integers(0, 3)),
    ]
    if nested:
        inner = specifications(ITEM_FIELDS, nested=False, depth=1)
        options.append(
            st.builds(
                Condition, st.sampled_from(["items", "sub"]), st.just(Operator.ELEM_MATCH), inner
            )
        )
    return st.one_of(options)


def specifications(
    fields: tuple[str, ...], *, nested: bool = True, depth: int = 2
) -> st.SearchStrategy[Specification]:
    leaves = conditions(fields, nested)
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3).map(lambda c: And(tuple(c))),
            st.lists(children, min_size=1, max_size=3).map(lambda c: Or(tuple(c))),
            children.map(Not),
        ),
        max_leaves=4 if depth > 1 else 2,
    )


@pytest.fixture(scope="module")
def collection(mongo_server: Any) -> Iterator[Collection[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_server.uri, **CLIENT_CODEC_KWARGS)
    database = client["spec_differential"]
    try:
        yield database["docs"]
    finally:
        client.drop_database("spec_differential")
        client.close()


@settings(
    max_examples=int(os.environ.get("SPEC_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=specifications(ALL_FIELDS), docs=st.lists(documents, min_size=2, max_size=10))
def test_server_and_evaluator_accept_the_same_documents(
    collection: Collection[dict[str, Any]], spec: Specification, docs: list[dict[str, Any]]
) -> None:
    collection.delete_many({})
    collection.insert_many([{"_id": i, **doc} for i, doc in enumerate(docs)])
    stored = list(collection.find({}))

    expected = {doc["_id"] for doc in stored if spec.is_satisfied_by(doc)}
    found = {doc["_id"] for doc in collection.find(compile_filter(spec), {"_id": 1})}

    assert found == expected, (compile_filter(spec), stored)
