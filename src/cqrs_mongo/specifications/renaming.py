"""Field renaming: a model's field names mapped to a store's (e.g. ``id`` stored as ``_id``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from cqrs_mongo.specifications.ast import And, Condition, Not, Or, Specification
from cqrs_mongo.specifications.query_options import QueryOptions, SortKey
from cqrs_mongo.specifications.values import thaw


def rename_path(path: str, mapping: Mapping[str, str]) -> str:
    """``path`` with its first segment renamed by ``mapping`` (``id.x`` -> ``_id.x``)."""
    head, dot, rest = path.partition(".")
    renamed = mapping.get(head)
    return path if renamed is None else f"{renamed}{dot}{rest}"


def rename_fields(spec: Specification, mapping: Mapping[str, str]) -> Specification:
    """The same specification over renamed top-level fields.

    Fields inside ``elem_match`` are relative to array elements and are left as they are.

    Example:
        >>> from cqrs_mongo.specifications import SpecificationBuilder
        >>> spec = SpecificationBuilder().where("id", "in", ["a"]).build()
        >>> rename_fields(spec, {"id": "_id"}).to_dict()["field"]
        '_id'
    """
    if isinstance(spec, Condition):
        field = rename_path(spec.field, mapping)
        if field == spec.field:
            return spec
        return Condition(field, spec.operator, thaw(spec.value))
    if isinstance(spec, And):
        return And(tuple(rename_fields(child, mapping) for child in spec.children))
    if isinstance(spec, Or):
        return Or(tuple(rename_fields(child, mapping) for child in spec.children))
    if isinstance(spec, Not):
        return Not(rename_fields(spec.child, mapping))
    return spec


def rename_options(options: QueryOptions, mapping: Mapping[str, str]) -> QueryOptions:
    """``options`` with the specification, ordering and selected fields renamed."""
    if not mapping:
        return options
    spec = options.specification
    return replace(
        options,
        specification=None if spec is None else rename_fields(spec, mapping),
        ordering=tuple(
            SortKey(rename_path(key.field, mapping), key.direction) for key in options.ordering
        ),
        fields=None
        if options.fields is None
        else tuple(rename_path(name, mapping) for name in options.fields),
    )
