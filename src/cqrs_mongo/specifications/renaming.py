"""Field renaming: a model's field names mapped to a store's (e.g. ``id`` stored as ``_id``)."""

from __future__ import annotations

from collections.abc import Mapping

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
    if isinstance(spec, And | Or):
        children = tuple(rename_fields(child, mapping) for child in spec.children)
        # Nothing renamed below: keep the node itself rather than re-checking a copy of it.
        if all(new is old for new, old in zip(children, spec.children, strict=True)):
            return spec
        return And(children) if isinstance(spec, And) else Or(children)
    if isinstance(spec, Not):
        child = rename_fields(spec.child, mapping)
        return spec if child is spec.child else Not(child)
    return spec


def rename_options(options: QueryOptions, mapping: Mapping[str, str]) -> QueryOptions:
    """``options`` with the specification, ordering and selected fields renamed.

    Returns ``options`` itself when no name changes; otherwise only the renamed parts are
    replaced (and checked again).

    Raises:
        InvalidSpecificationError: a renamed field name is invalid or repeated.
    """
    if not mapping:
        return options
    renamed = options
    spec = options.specification
    if spec is not None:
        new_spec = rename_fields(spec, mapping)
        if new_spec is not spec:
            renamed = renamed.with_specification(new_spec)
    ordering = tuple(
        SortKey(rename_path(key.field, mapping), key.direction) for key in options.ordering
    )
    if ordering != options.ordering:
        renamed = renamed.with_ordering(*ordering)
    if options.fields is not None:
        fields = tuple(rename_path(name, mapping) for name in options.fields)
        if fields != options.fields:
            renamed = renamed.with_fields(*fields)
    return renamed
