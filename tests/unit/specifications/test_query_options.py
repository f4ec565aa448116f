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
