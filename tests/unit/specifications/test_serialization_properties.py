"""Property: ``from_dict(to_dict(spec))`` is the same specification, with the same answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cqrs_mongo.specifications import And, Condition, Not, Operator, Or, Specification

FIELDS = st.sampled_from(["a", "b", "a.x", "items", "items.k"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False),
    st.decimals(-3, 3, places=2, allow_nan=False),
    st.text(max_size=4),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
    st.uuids(),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from("xy"), SCALARS, max_size=2),
)
PATTERNS = st.text(max_size=6).filter(lambda s: "\x00" not in s)


def conditions() -> st.SearchStrategy[Specification]:
    text_ops = [
        op for op in Operator if op.value.lstrip("i").endswith(("contains", "with", "like"))
    ]
    return st.one_of(
        st.builds(Condition, FIELDS, st.sampled_from([Operator.EQ, Operator.NE]), VALUES),
        st.builds(Condition, FIELDS, st.sampled_from(["gt", ">=", "<", "lte"]), SCALARS),
        st.builds(
            Condition,
            FIELDS,
            st.sampled_from(["in", "not_in", "all"]),
            st.lists(SCALARS, max_size=3),
        ),
        st.builds(
            Condition,
            FIELDS,
            st.sampled_from(["between", "not_between"]),
            st.tuples(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False)),
        ),
        st.builds(Condition, FIELDS, st.sampled_from(text_ops), PATTERNS),
        st.builds(
            Condition, FIELDS, st.sampled_from(["is_null", "is_not_null", "exists"]), st.booleans()
        ),
        st.builds(Condition, FIELDS, st.just("size"), st.integers(0, 3)),
    )


def specifications() -> st.SearchStrategy[Specification]:
    return st.recursive(
        conditions(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda c: And(tuple(c))),
            st.lists(inner, min_size=1, max_size=3).map(lambda c: Or(tuple(c))),
            inner.map(Not),
            st.builds(Condition, st.just("items"), st.just("elem_match"), inner),
        ),
        max_leaves=6,
    )


DOCUMENTS = st.dictionaries(
    st.sampled_from(["a", "b", "items"]),
    st.one_of(
        VALUES, st.lists(st.dictionaries(st.sampled_from("kx"), SCALARS, max_size=2), max_size=2)
    ),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(spec=specifications(), document=DOCUMENTS)
def test_round_trip_keeps_the_specification_and_its_answers(
    spec: Specification, document: dict[str, Any]
) -> None:
    data = spec.to_dict()
    again = Specification.from_dict(data)

    assert again == spec
    assert hash(again) == hash(spec)
    assert again.to_dict() == data
    assert again.is_satisfied_by(document) == spec.is_satisfied_by(document)


def test_to_dict_is_plain_data() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    ident = uuid.uuid4()
    spec = Condition("a", "in", [moment, ident, Decimal("1.5")]) & ~Condition(
        "b", "=", {"x": [1, 2]}
    )

    assert spec.to_dict() == {
        "and": [
            {"field": "a", "op": "in", "value": [moment, ident, Decimal("1.5")]},
            {"not": {"field": "b", "op": "=", "value": {"x": [1, 2]}}},
        ]
    }
