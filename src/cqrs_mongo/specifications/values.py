"""Literal values in specifications: checked, deep-frozen on the way in, thawed on the way out."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications.limits import (
    MAX_DEPTH,
    MAX_SPECIFICATION_BYTES,
    check_decimal,
    check_depth,
    check_size,
    check_text,
)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SCALARS = (str, int, float, Decimal, bytes, datetime, uuid.UUID)


class FrozenDocument(Mapping[str, Any]):
    """An immutable, hashable sub-document value; key order is kept and compared.

    Key order matters because the database compares embedded documents field by field in
    order: ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}`` are different values.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items: tuple[tuple[str, Any], ...] = tuple(items.items())

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenDocument):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == tuple(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return repr(dict(self._items))


def is_object_id(value: Any) -> bool:
    """Whether ``value`` is a BSON ObjectId, recognised without importing the driver."""
    kind = type(value)
    return kind.__name__ == "ObjectId" and kind.__module__.startswith("bson")


def freeze(value: Any, where: str, depth: int = 0) -> Any:
    """A deep, immutable copy of literal ``value``: lists become tuples, dicts FrozenDocuments.

    Enums are replaced by their value, as the package's codecs store them.

    Args:
        value: the literal given by the caller.
        where: what the value belongs to, for the error message (e.g. ``"field 'tags'"``).
        depth: how deep ``value`` sits in the caller's value (for the nesting limit).

    Raises:
        InvalidSpecificationError: the value (or something inside it) is not storable data:
            an unsupported type, an int beyond 64 bits, a Decimal beyond Decimal128, a
            string with a lone surrogate, or nesting deeper than ``MAX_DEPTH``.
    """
    if depth > MAX_DEPTH:
        check_depth(depth, f"Value for {where}")
    if isinstance(value, enum.Enum):
        value = value.value
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not _INT64_MIN <= value <= _INT64_MAX
    ):
        raise InvalidSpecificationError(
            f"Value for {where} is {value}, outside the 64-bit integer range a database stores."
        )
    if isinstance(value, str):
        if not value.isascii():
            check_text(value, f"Value for {where}")
        return value
    if isinstance(value, Decimal):
        check_decimal(value, where)
        return value
    if value is None or isinstance(value, (bool, *_SCALARS)) or is_object_id(value):
        return value
    if isinstance(value, list | tuple):
        # Every element takes at least 8 encoded bytes: refuse a list that could never fit
        # before walking a million of them.
        if 8 * len(value) > MAX_SPECIFICATION_BYTES:
            check_size(8 * len(value), f"Value for {where}")
        return tuple(freeze(item, where, depth + 1) for item in value)
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str) or "\x00" in key:
                raise InvalidSpecificationError(
                    f"Value for {where} has key {key!r}; document keys must be strings "
                    "without NUL bytes."
                )
            check_text(key, f"A key in the value for {where}")
        return FrozenDocument({key: freeze(item, where, depth + 1) for key, item in value.items()})
    raise InvalidSpecificationError(
        f"Value for {where} has unsupported type {type(value).__name__}: expected None, bool, "
        "int, float, Decimal, str, bytes, datetime, UUID, ObjectId, or a list or dict of those."
    )


def thaw(value: Any) -> Any:
    """The plain-Python form of a frozen value: tuples become lists, documents dicts."""
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    if isinstance(value, FrozenDocument):
        return {key: thaw(item) for key, item in value.items()}
    return value


def has_operator_keys(value: Any) -> bool:
    """Whether ``value`` is a document with a ``$``-prefixed key (literal data to us)."""
    return isinstance(value, Mapping) and any(key.startswith("$") for key in value)
