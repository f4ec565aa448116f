"""Rebuilding specifications from plain data (``to_dict`` output), with a field allow-list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications.ast import And, Condition, Not, Or, Specification
from cqrs_mongo.specifications.operators import Operator

MAX_DEPTH = 32
"""Deepest nesting of groups accepted, so hostile input cannot exhaust the stack."""

_CONDITION_KEYS = frozenset({"field", "op", "value"})


def specification_from_dict(
    data: Mapping[str, Any], allowed_fields: Iterable[str] | None = None
) -> Specification:
    """The specification ``data`` describes (the format ``Specification.to_dict`` produces).

    Args:
        data: a condition ``{"field", "op", "value"}`` or a group ``{"and": [...]}``,
            ``{"or": [...]}``, ``{"not": {...}}``.
        allowed_fields: field paths the data may name; a path equal to or below one of them
            is allowed (``"address.city"`` under ``"address"``). ``None`` allows any valid path.
            Fields inside ``elem_match`` are checked as ``"<array field>.<field>"``, and the
            array field itself is allowed when some allowed path lies below it.

    Raises:
        InvalidSpecificationError: malformed data, or a field outside ``allowed_fields``.
    """
    allowed = None if allowed_fields is None else frozenset(allowed_fields)
    return _parse(data, allowed, "", 0)


def _parse(data: Any, allowed: frozenset[str] | None, prefix: str, depth: int) -> Specification:
    if depth > MAX_DEPTH:
        raise InvalidSpecificationError(f"Specification is nested deeper than {MAX_DEPTH} levels.")
    if not isinstance(data, Mapping):
        raise InvalidSpecificationError(
            f"A specification must be a dict, got {type(data).__name__}."
        )
    keys = set(data)
    if keys <= _CONDITION_KEYS and {"field", "op"} <= keys:
        return _condition(data, allowed, prefix, depth)
    if len(keys) != 1 or not keys <= {"and", "or", "not"}:
        raise InvalidSpecificationError(
            f"A specification dict needs keys field/op/value, or exactly one of and/or/not; "
            f"got {sorted(map(str, keys))}."
        )
    if "not" in data:
        return Not(_parse(data["not"], allowed, prefix, depth + 1))
    (group,) = keys
    items = data[group]
    if not isinstance(items, list | tuple):
        raise InvalidSpecificationError(
            f"An {group!r} group must hold a list, got {type(items).__name__}."
        )
    children = tuple(_parse(item, allowed, prefix, depth + 1) for item in items)
    return And(children) if group == "and" else Or(children)


def _condition(
    data: Mapping[str, Any], allowed: frozenset[str] | None, prefix: str, depth: int
) -> Condition:
    field = data["field"]
    operator = Operator.parse(data["op"])
    if not isinstance(field, str):
        raise InvalidSpecificationError(
            f"Field name must be a string, got {type(field).__name__} {field!r}."
        )
    full = f"{prefix}{field}"
    elem_match = operator is Operator.ELEM_MATCH
    if allowed is not None and not _is_allowed(full, allowed, elem_match):
        raise InvalidSpecificationError(f"Field {full!r} is not one of the fields allowed here.")
    value = data.get("value")
    if elem_match:
        value = _parse(value, allowed, f"{full}.", depth + 1)
    return Condition(field, operator, value)


def _is_allowed(path: str, allowed: frozenset[str], elem_match: bool) -> bool:
    # An elem_match array may also be named through its element fields ("lines.sku"),
    # which are then checked one by one.
    if elem_match and any(name.startswith(f"{path}.") for name in allowed):
        return True
    segments = path.split(".")
    return any(".".join(segments[:n]) in allowed for n in range(1, len(segments) + 1))
