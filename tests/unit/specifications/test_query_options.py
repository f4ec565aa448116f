"""QueryOptions: immutable, validated, and coercible from a bare specification."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications import Condition, QueryOptions, SortKey


def test_with_methods_return_configured_copies() -> None:
    spec = Condition("customer_id", "=", "c1")
    base = QueryOptions()
    options = (
        base.with_specification(spec)
        .with_ordering("-created_at", "+name", "total")
        .with_pagination(limit=10, offset=20)
        .with_fields("name", "total")
    )

    assert base == QueryOptions()
    assert options.specification == spec
    assert options.ordering == (
        SortKey("created_at", -1),
        SortKey("name", 1),
        SortKey("total", 1),
    )
    assert [(f, d) for f, d in options.ordering] == [("created_at", -1), ("name", 1), ("total", 1)]
    assert (options.limit, options.offset, options.fields) == (10, 20, ("name", "total"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.limit = 5  # type: ignore[misc]


def test_coerce_accepts_a_specification_or_options() -> None:
    spec = Condition("a", "=", 1)
    options = QueryOptions(specification=spec, limit=3)

    assert QueryOptions.coerce(spec) == QueryOptions(specification=spec)
    assert QueryOptions.coerce(options) is options
    assert QueryOptions.coerce(None) == QueryOptions()
    with pytest.raises(InvalidSpecificationError, match="Specification or QueryOptions, got list"):
        QueryOptions.coerce(["id-1"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("limit", "offset", "message"),
    [
        (0, 0, "Limit must be an integer from 1 to 100000 or None, got 0"),
        (-1, 0, "got -1"),
        (10**6, 0, "got 1000000"),
        ("10", 0, "got '10'"),
        (True, 0, "got True"),
        (10, -5, "Offset must be a non-negative integer, got -5"),
        (10, 1.5, "got 1.5"),
    ],
)
def test_bad_pagination_is_rejected(limit: Any, offset: Any, message: str) -> None:
    with pytest.raises(InvalidSpecificationError, match=message):
        QueryOptions().with_pagination(limit=limit, offset=offset)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("-$natural",), "starting with '\\$'"),
        (("a", "-a"), "names field 'a' twice"),
        (("-",), "must not be empty"),
        (("a..b",), "empty segment"),
    ],
)
def test_bad_ordering_is_rejected(fields: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidSpecificationError, match=message):
        QueryOptions().with_ordering(*fields)


def test_bad_fields_and_specifications_are_rejected() -> None:
    with pytest.raises(InvalidSpecificationError, match="starting with"):
        QueryOptions().with_fields("$where")
    with pytest.raises(InvalidSpecificationError, match="Expected a specification, got dict"):
        QueryOptions().with_specification({"a": 1})  # type: ignore[arg-type]


def test_offset_and_cursor_are_exclusive() -> None:
    with pytest.raises(
        InvalidSpecificationError, match="Offset 5 cannot be combined with a cursor"
    ):
        QueryOptions().with_cursor("token").with_pagination(limit=5, offset=5)
    with pytest.raises(InvalidSpecificationError, match="Offset 5 cannot be combined"):
        QueryOptions().with_pagination(offset=5).with_cursor("token")
    with pytest.raises(InvalidSpecificationError, match="non-empty token"):
        QueryOptions().with_cursor("")


def test_each_copy_keeps_the_other_parts_and_equals_a_constructed_one() -> None:
    spec = Condition("a", "=", 1)
    options = (
        QueryOptions()
        .with_fields("a")
        .with_specification(spec)
        .with_ordering("-b")
        .with_pagination(limit=5)
        .with_cursor("token")
    )
    built = QueryOptions(
        specification=spec,
        ordering=(SortKey("b", -1),),
        limit=5,
        cursor="token",
        fields=("a",),
    )

    assert options == built
    assert hash(options) == hash(built)
    assert options.with_fields() == dataclasses.replace(built, fields=None)
    assert options.with_cursor(None).with_pagination(limit=5, offset=3).offset == 3


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ((SortKey("a", 2),), "direction for 'a' must be 1 or -1, got 2"),
        ((SortKey("$a", 1),), "starting with '\\$'"),
        ((SortKey("a"), SortKey("a", -1)), "names field 'a' twice"),
        ((SortKey("a"), "-a"), "names field 'a' twice"),
    ],
)
def test_sort_keys_given_directly_are_checked(keys: tuple[Any, ...], message: str) -> None:
    with pytest.raises(InvalidSpecificationError, match=message):
        QueryOptions().with_ordering(*keys)
    if all(isinstance(key, SortKey) for key in keys):
        with pytest.raises(InvalidSpecificationError, match=message):
            QueryOptions(ordering=keys)


def test_the_constructor_checks_every_part() -> None:
    with pytest.raises(InvalidSpecificationError, match="Expected a specification, got str"):
        QueryOptions(specification="a = 1")  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecificationError, match="got 0"):
        QueryOptions(limit=0)
    with pytest.raises(InvalidSpecificationError, match="Ordering keys must be SortKey, got str"):
        QueryOptions(ordering=("a",))  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecificationError, match="Offset 2 cannot be combined"):
        QueryOptions(offset=2, cursor="token")
    with pytest.raises(InvalidSpecificationError, match="starting with"):
        QueryOptions(fields=("$where",))
    with pytest.raises(InvalidSpecificationError, match="got 'x'"):
        dataclasses.replace(QueryOptions(), offset="x")
