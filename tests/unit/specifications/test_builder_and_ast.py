"""Building specifications: the builder, the operators, ``&``/``|``/``~`` and immutability."""

from __future__ import annotations

import dataclasses

import pytest

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications import (
    And,
    Condition,
    ISpecification,
    Not,
    Operator,
    Or,
    Specification,
    SpecificationBuilder,
)


def test_where_chains_and_build_ands_the_terms() -> None:
    spec = SpecificationBuilder().where("customer_id", "=", "c1").where("total", ">", 10).build()

    assert spec == And((Condition("customer_id", "=", "c1"), Condition("total", ">", 10)))
    assert spec.is_satisfied_by({"customer_id": "c1", "total": 11})
    assert not spec.is_satisfied_by({"customer_id": "c1", "total": 10})


def test_a_single_term_builds_to_itself_and_none_to_match_all() -> None:
    assert SpecificationBuilder().where("a", "=", 1).build() == Condition("a", "=", 1)
    assert SpecificationBuilder().build() == And(())
    assert SpecificationBuilder().build().is_satisfied_by({"anything": 1})


def test_groups_from_functions_builders_and_specs() -> None:
    vip = Condition("vip", "=", True)
    spec = (
        SpecificationBuilder()
        .where("status", "=", "open")
        .any_of(lambda b: b.where("country", "=", "FR").where("total", ">=", 100), vip)
        .not_(SpecificationBuilder().where("tags", "=", "test"))
        .build()
    )

    assert spec.is_satisfied_by({"status": "open", "vip": True, "tags": ["x"]})
    assert spec.is_satisfied_by({"status": "open", "country": "FR", "total": 100})
    assert not spec.is_satisfied_by({"status": "open", "country": "FR", "total": 99})
    assert not spec.is_satisfied_by({"status": "open", "vip": True, "tags": ["test", "x"]})


def test_or_replaces_everything_built_so_far_with_an_alternative() -> None:
    spec = (
        SpecificationBuilder()
        .where("a", "=", 1)
        .where("b", "=", 2)
        .or_(lambda b: b.where("c", "=", 3))
        .build()
    )

    assert spec == Or(
        (And((Condition("a", "=", 1), Condition("b", "=", 2))), Condition("c", "=", 3))
    )


def test_builders_are_immutable_and_shareable() -> None:
    base = SpecificationBuilder().where("a", "=", 1)
    first = base.where("b", "=", 2).build()
    second = base.where("c", "=", 3).build()

    assert base.build() == Condition("a", "=", 1)
    assert first != second


def test_operators_combine_and_flatten() -> None:
    a, b, c = Condition("a", "=", 1), Condition("b", "=", 2), Condition("c", "=", 3)

    assert (a & b) & c == And((a, b, c))
    assert a | (b | c) == Or((a, b, c))
    assert ~a == Not(a)
    assert ~~a == a
    assert (a & b).is_satisfied_by({"a": 1, "b": 2})
    assert (a | b).is_satisfied_by({"b": 2})
    assert (~a).is_satisfied_by({"a": 2})


def test_combining_with_a_non_specification_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = Condition("a", "=", 1) & {"a": 1}  # type: ignore[operator]


def test_nodes_are_frozen_and_values_deep_frozen() -> None:
    tags = ["x", "y"]
    document = {"city": "Paris", "zip": ["75001"]}
    spec = Condition("tags", "in", tags) & Condition("address", "=", document)
    tags.append("z")
    document["city"] = "Lyon"

    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.children = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Condition("a", "=", 1).value = 2  # type: ignore[misc]
    assert (
        spec.is_satisfied_by({"tags": "z", "address": {"city": "Paris", "zip": ["75001"]}}) is False
    )
    assert spec.is_satisfied_by({"tags": "y", "address": {"city": "Paris", "zip": ["75001"]}})
    assert hash(spec) == hash(
        Condition("tags", "in", ["x", "y"])
        & Condition("address", "=", {"city": "Paris", "zip": ["75001"]})
    )


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("eq", "="),
        ("==", "="),
        ("ne", "!="),
        ("gt", ">"),
        ("gte", ">="),
        ("lt", "<"),
        ("lte", "<="),
        ("nin", "not_in"),
        ("IN", "in"),
        ("elemMatch", "elem_match"),
    ],
)
def test_readable_aliases_parse_to_the_canonical_operator(alias: str, canonical: str) -> None:
    assert (
        Condition(
            "a",
            alias,
            [1]
            if canonical in ("in", "not_in")
            else 1
            if canonical != "elem_match"
            else Condition("b", "=", 1),
        ).operator.value
        == canonical
    )


def test_every_canonical_symbol_is_an_operator() -> None:
    symbols = (
        "= != > >= < <= in not_in between not_between contains icontains startswith "
        "istartswith endswith iendswith like ilike is_null is_not_null exists all size elem_match"
    )
    assert [Operator.parse(s).value for s in symbols.split()] == symbols.split()


def test_elem_match_accepts_a_builder_function() -> None:
    spec = (
        SpecificationBuilder()
        .where("lines", "elem_match", lambda b: b.where("sku", "=", "A").where("qty", ">", 1))
        .build()
    )

    assert spec.is_satisfied_by({"lines": [{"sku": "B", "qty": 5}, {"sku": "A", "qty": 2}]})
    assert not spec.is_satisfied_by({"lines": [{"sku": "B", "qty": 5}, {"sku": "A", "qty": 1}]})


def test_ispecification_is_the_base_class() -> None:
    assert ISpecification is Specification
    assert isinstance(Condition("a", "=", 1), ISpecification)


def test_an_empty_or_group_is_rejected() -> None:
    with pytest.raises(InvalidSpecificationError, match="'or' group needs at least one"):
        Or(())
    with pytest.raises(InvalidSpecificationError, match="only specifications, got dict"):
        And(({"a": 1},))  # type: ignore[arg-type]
