"""Malformed specifications are rejected at build time with a message naming the problem."""

from __future__ import annotations

from typing import Any

import pytest

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications import Condition, Specification


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("$where", "segment '\\$where' starting with '\\$'"),
        ("a.$b", "segment '\\$b' starting with '\\$'"),
        ("a..b", "empty segment"),
        (".a", "empty segment"),
        ("a.", "empty segment"),
        ("", "must not be empty"),
        ("a\x00b", "NUL byte"),
        ("items.0.sku", "numeric segment '0'"),
        (42, "must be a string, got int"),
    ],
)
def test_bad_field_names(field: Any, message: str) -> None:
    with pytest.raises(InvalidSpecificationError, match=message):
        Condition(field, "=", 1)


@pytest.mark.parametrize("operator", ["~=", "regex", "$gt", "", None])
def test_unknown_operators(operator: Any) -> None:
    with pytest.raises(InvalidSpecificationError, match="Unknown operator"):
        Condition("a", operator, 1)


@pytest.mark.parametrize(
    ("operator", "value", "message"),
    [
        ("between", [1], "exactly two bounds, got 1 items"),
        ("between", [1, 2, 3], "exactly two bounds, got 3 items"),
        ("not_between", 5, "exactly two bounds, got int"),
        ("between", [None, 2], "must not be None"),
        ("in", "abc", "must be a list, got str"),
        ("not_in", {"a": 1}, "must be a list, got dict"),
        ("all", 3, "must be a list, got int"),
        ("in", [{"$gt": 1}], "'\\$'-prefixed keys"),
        ("size", -1, "non-negative integer, got -1"),
        ("size", 1.5, "non-negative integer, got 1.5"),
        ("size", True, "non-negative integer, got True"),
        ("is_null", "yes", "true, false or omitted, got 'yes'"),
        ("is_not_null", 1, "true, false or omitted, got 1"),
        ("exists", "no", "true, false or omitted"),
        ("elem_match", {"field": "a"}, "specification over the array's elements, got dict"),
        ("contains", 5, "must be a string, got int"),
        ("startswith", None, "must be a string, got NoneType"),
        ("like", "x" * 1001, "1001 characters long; at most 1000"),
        ("icontains", "a\x00", "NUL byte"),
        (">", [1, 2], "single value, got list"),
        ("<=", {"a": 1}, "single value, got dict"),
        ("=", object(), "unsupported type object"),
        ("=", {1: "a"}, "keys must be strings"),
        ("=", 2**64, "outside the 64-bit integer range"),
    ],
)
def test_values_of_the_wrong_shape(operator: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidSpecificationError, match=message):
        Condition("a", operator, value)


def test_messages_name_the_field_and_operator() -> None:
    with pytest.raises(InvalidSpecificationError, match=r"field 'price' \(between\)"):
        Condition("price", "between", [1])


def test_operator_shaped_dicts_are_accepted_as_literal_values() -> None:
    spec = Condition("f", "=", {"$ne": None})

    assert spec.is_satisfied_by({"f": {"$ne": None}})
    assert not spec.is_satisfied_by({"f": 1})
    assert not spec.is_satisfied_by({})


def test_from_dict_rejects_malformed_data() -> None:
    with pytest.raises(InvalidSpecificationError, match="keys field/op/value, or exactly one"):
        Specification.from_dict({"and": [], "or": []})
    with pytest.raises(InvalidSpecificationError, match="must hold a list, got dict"):
        Specification.from_dict({"or": {"field": "a"}})
    with pytest.raises(InvalidSpecificationError, match="must be a dict, got str"):
        Specification.from_dict({"not": "a = 1"})
    with pytest.raises(InvalidSpecificationError, match="Unknown operator"):
        Specification.from_dict({"field": "a", "op": "$where", "value": "1"})
    deep: dict[str, Any] = {"field": "a", "op": "=", "value": 1}
    for _ in range(40):
        deep = {"not": deep}
    with pytest.raises(InvalidSpecificationError, match="nested deeper than 32"):
        Specification.from_dict(deep)


def test_from_dict_enforces_the_allow_list() -> None:
    data = {
        "and": [
            {"field": "status", "op": "=", "value": "x"},
            {"field": "address.city", "op": "=", "value": "Paris"},
            {
                "field": "lines",
                "op": "elem_match",
                "value": {"field": "sku", "op": "=", "value": "A"},
            },
        ]
    }

    assert Specification.from_dict(data, allowed_fields=["status", "address", "lines.sku"])
    with pytest.raises(InvalidSpecificationError, match=r"'lines\.sku' is not one of the fields"):
        Specification.from_dict(data, allowed_fields=["status", "address", "lines.qty"])
    with pytest.raises(InvalidSpecificationError, match="'status' is not one of the fields"):
        Specification.from_dict(data, allowed_fields=["address.city"])
