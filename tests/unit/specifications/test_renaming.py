"""Renaming model field names to stored ones (``id`` -> ``_id``) in specifications and options."""

from __future__ import annotations

import pytest

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications import Condition, QueryOptions, SortKey, SpecificationBuilder
from cqrs_mongo.specifications.renaming import rename_fields, rename_options

ID_TO_STORED = {"id": "_id"}


def test_options_naming_no_renamed_field_are_returned_as_they_are() -> None:
    spec = (
        SpecificationBuilder()
        .where("customer_id", "=", "c1")
        .any_of(lambda b: b.where("status", "=", "paid"), lambda b: b.where("idx", ">", 2))
        .not_(lambda b: b.where("ids", "in", ["a"]))
        .build()
    )
    options = QueryOptions().with_specification(spec).with_ordering("-created_at").with_fields("a")

    assert rename_fields(spec, ID_TO_STORED) is spec
    assert rename_options(options, ID_TO_STORED) is options


def test_renamed_fields_reach_every_part_of_the_options() -> None:
    spec = (
        SpecificationBuilder()
        .where("status", "=", "paid")
        .not_(lambda b: b.any_of(lambda c: c.where("id", "in", ["a", "b"])))
        .where("id.part", "=", {"x": [1]})
        .build()
    )
    options = (
        QueryOptions()
        .with_specification(spec)
        .with_ordering("-created_at", "id")
        .with_pagination(limit=3)
        .with_fields("id", "name")
    )

    renamed = rename_options(options, ID_TO_STORED)

    assert renamed.specification == (
        SpecificationBuilder()
        .where("status", "=", "paid")
        .not_(lambda b: b.any_of(lambda c: c.where("_id", "in", ["a", "b"])))
        .where("_id.part", "=", {"x": [1]})
        .build()
    )
    assert renamed.ordering == (SortKey("created_at", -1), SortKey("_id", 1))
    assert renamed.fields == ("_id", "name")
    assert renamed.limit == 3
    assert options.ordering[1] == SortKey("id", 1)


def test_elem_match_fields_are_relative_and_kept() -> None:
    spec = Condition("lines", "elem_match", Condition("id", "=", "l1"))

    assert rename_fields(spec, ID_TO_STORED) is spec


def test_a_rename_that_repeats_an_ordering_field_is_refused() -> None:
    options = QueryOptions().with_ordering("id", "-_id")

    with pytest.raises(InvalidSpecificationError, match="names field '_id' twice"):
        rename_options(options, ID_TO_STORED)
