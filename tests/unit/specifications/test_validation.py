"""Malformed specifications are rejected at build time with a message naming the problem."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.mongo.queries.query_compiler import compile_filter
from cqrs_mongo.specifications import And, Condition, Not, Or, QueryOptions, Specification


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


# --- values and trees a server could never take are refused when built ----------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal("1.234567890123456789012345678901234567"), "128-bit decimal"),
        (Decimal("1E+10000"), "128-bit decimal"),
        (Decimal("1E-10000"), "128-bit decimal"),
        ([Decimal("-1E+7000")], "128-bit decimal"),
        ("\ud800", "surrogate"),
        (["ok", {"k": "x\udfff"}], "surrogate"),
        ({"\ud800": 1}, "surrogate"),
    ],
)
@pytest.mark.parametrize("operator", ["=", "in"])
def test_values_a_server_cannot_store_are_refused(value: Any, message: str, operator: str) -> None:
    if operator == "in":
        value = [value]
    with pytest.raises(InvalidSpecificationError, match=message):
        Condition("a", operator, value)


def test_decimals_that_round_exactly_and_specials_are_accepted() -> None:
    Condition("a", ">", Decimal("1." + "0" * 40))  # 41 digits, but exact in 34
    Condition("a", "=", Decimal("NaN"))
    Condition("a", "<", Decimal("-Infinity"))
    Condition("a", "between", [Decimal("9.999999999999999999999999999999999E+6144"), 1])


def test_lone_surrogates_in_field_names_and_patterns_are_refused() -> None:
    with pytest.raises(InvalidSpecificationError, match="surrogate"):
        Condition("a\ud800", "=", 1)
    with pytest.raises(InvalidSpecificationError, match="surrogate"):
        Condition("a", "contains", "\ud800")
    with pytest.raises(InvalidSpecificationError, match="surrogate"):
        Specification.from_dict(json.loads('{"field": "a\\ud800", "op": "=", "value": 1}'))
    with pytest.raises(InvalidSpecificationError, match="surrogate"):
        QueryOptions().with_ordering("x\udc00")


def test_overlapping_selected_fields_are_refused() -> None:
    with pytest.raises(InvalidSpecificationError, match=r"'a' and 'a\.b' overlap"):
        QueryOptions().with_fields("a", "a.b")
    with pytest.raises(InvalidSpecificationError, match="overlap"):
        QueryOptions(fields=("x.y.z", "x.y"))
    QueryOptions().with_fields("a", "ab", "a_b")


def test_a_value_too_large_for_a_query_document_is_refused() -> None:
    with pytest.raises(InvalidSpecificationError, match="too large"):
        Condition("a", "in", list(range(1_500_000)))
    with pytest.raises(InvalidSpecificationError, match="too large"):
        Condition("a", "=", "x" * (9 * 1024 * 1024))
    with pytest.raises(InvalidSpecificationError, match="too large"):
        Condition("a", "in", [f"item-{n:06}" for n in range(400_000)])
    third = "x" * (3 * 1024 * 1024)
    both = Condition("a", "=", third) & Condition("b", "=", third)
    with pytest.raises(InvalidSpecificationError, match="too large"):
        both & Condition("c", "=", third)  # each fits, the tree does not


def test_a_value_nested_thousands_deep_is_refused() -> None:
    value: Any = 1
    for _ in range(5_000):
        value = {"k": [value]}
    with pytest.raises(InvalidSpecificationError, match="nested deeper than"):
        Condition("a", "=", value)


def _deep_tree(levels: int) -> Specification:
    spec: Specification = Condition("a", "=", 1)
    for n in range(levels):
        spec = Or((And((spec, Condition("b", "=", n))), Condition("c", "=", n)))
    return spec


def test_a_tree_built_hundreds_of_levels_deep_is_refused() -> None:
    with pytest.raises(InvalidSpecificationError, match="nested deeper than"):
        _deep_tree(400)
    with pytest.raises(InvalidSpecificationError, match="nested deeper than"):
        spec: Specification = Condition("a", "=", 1)
        for _ in range(400):
            spec = Not(Or((spec,)))


def test_the_deepest_tree_accepted_compiles_evaluates_serialises_and_hashes() -> None:
    levels = 0
    spec = _deep_tree(0)
    while True:
        try:
            spec = _deep_tree(levels + 1)
        except InvalidSpecificationError:
            break
        levels += 1
    assert levels >= 10

    assert compile_filter(spec)
    assert spec.is_satisfied_by({"c": levels - 1}) is True
    assert spec.is_satisfied_by({"a": 1}) is False
    assert spec.to_dict()["or"]
    assert hash(spec) == hash(_deep_tree(levels))
