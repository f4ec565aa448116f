"""Build-time checks that a condition's value has the shape its operator needs."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications.limits import check_decimal, check_size, check_text
from cqrs_mongo.specifications.operators import COMPARISONS, TEXT_MATCHES, Operator
from cqrs_mongo.specifications.patterns import MAX_LIKE_WILDCARDS, like_segments
from cqrs_mongo.specifications.values import FrozenDocument, freeze, has_operator_keys

MAX_PATTERN_LENGTH = 1_000
"""Longest text accepted by contains/startswith/endswith/like and their ``i`` variants."""

_SINGLE_VALUE = frozenset({Operator.EQ, Operator.NE, *COMPARISONS})
# Exact types freeze() returns unchanged (subclasses and enums go the long way; ints need
# the 64-bit range check).
_PLAIN_SCALARS = frozenset({str, float, bool, bytes, Decimal, datetime, uuid.UUID, type(None)})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def check_value(operator: Operator, value: Any, field: str, spec_type: type) -> Any:
    """The frozen ``value`` if it fits ``operator``, for the condition on ``field``.

    Args:
        operator: the condition's operator.
        value: the caller's value.
        field: the condition's field, named in error messages.
        spec_type: the specification base class (``elem_match`` values must be one).

    Raises:
        InvalidSpecificationError: the value has the wrong type or shape for the operator.
    """
    if operator in _SINGLE_VALUE:
        # The common case, a plain scalar compared to a field, is already frozen; skip
        # building the error context nothing will name.
        kind = type(value)
        if kind is str:
            if not value.isascii():
                check_text(value, f"Value for field {field!r}")
            return value
        if kind is Decimal:
            check_decimal(value, f"field {field!r} ({operator.value})")
            return value
        if kind in _PLAIN_SCALARS or (kind is int and _INT64_MIN <= value <= _INT64_MAX):
            return value
    where = f"field {field!r} ({operator.value})"
    if operator in (Operator.EQ, Operator.NE):
        return freeze(value, where)
    if operator in COMPARISONS:
        return _scalar(value, where)
    if operator in (Operator.IN, Operator.NOT_IN, Operator.ALL):
        return _literal_list(value, where)
    if operator in (Operator.BETWEEN, Operator.NOT_BETWEEN):
        return _bounds(value, where)
    if operator in TEXT_MATCHES:
        return _pattern(value, where, operator in (Operator.LIKE, Operator.ILIKE))
    if operator in (Operator.IS_NULL, Operator.IS_NOT_NULL, Operator.EXISTS):
        return _flag(value, where)
    if operator is Operator.SIZE:
        return _size(value, where)
    if not isinstance(value, spec_type):
        raise InvalidSpecificationError(
            f"Value for {where} must be a specification over the array's elements, "
            f"got {type(value).__name__}."
        )
    return value


def _scalar(value: Any, where: str) -> Any:
    frozen = freeze(value, where)
    if isinstance(frozen, tuple | FrozenDocument):
        raise InvalidSpecificationError(
            f"Value for {where} must be a single value, got {type(value).__name__}."
        )
    return frozen


def _literal_list(value: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidSpecificationError(
            f"Value for {where} must be a list, got {type(value).__name__}."
        )
    check_size(8 * len(value), f"Value for {where}")  # at least 8 bytes an element
    for item in value:
        # The server refuses documents with $-keys inside $in/$nin/$all ("cannot nest $ under
        # $in"), so such a value could never be sent literally.
        if has_operator_keys(item):
            raise InvalidSpecificationError(
                f"Value for {where} holds a document with '$'-prefixed keys, "
                "which cannot be matched inside a list."
            )
    frozen: tuple[Any, ...] = freeze(value, where)
    return frozen


def _bounds(value: Any, where: str) -> tuple[Any, Any]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        shape = f"{len(value)} items" if isinstance(value, list | tuple) else type(value).__name__
        raise InvalidSpecificationError(
            f"Value for {where} must be a list of exactly two bounds, got {shape}."
        )
    low, high = (_scalar(bound, where) for bound in value)
    if low is None or high is None:
        raise InvalidSpecificationError(f"Bounds for {where} must not be None.")
    return low, high


def _pattern(value: Any, where: str, like: bool) -> str:
    if not isinstance(value, str):
        raise InvalidSpecificationError(
            f"Value for {where} must be a string, got {type(value).__name__}."
        )
    if len(value) > MAX_PATTERN_LENGTH:
        raise InvalidSpecificationError(
            f"Pattern for {where} is {len(value)} characters long; "
            f"at most {MAX_PATTERN_LENGTH} are allowed."
        )
    if "\x00" in value:
        raise InvalidSpecificationError(f"Pattern for {where} must not contain a NUL byte.")
    check_text(value, f"Pattern for {where}")
    if like and "%" in value:
        wildcards = len(like_segments(value)) - 1
        if wildcards > MAX_LIKE_WILDCARDS:
            raise InvalidSpecificationError(
                f"Pattern for {where} has {wildcards} '%' wildcards; at most "
                f"{MAX_LIKE_WILDCARDS} are allowed."
            )
    return value


def _flag(value: Any, where: str) -> bool:
    if value is None:
        return True
    if not isinstance(value, bool):
        raise InvalidSpecificationError(
            f"Value for {where} must be true, false or omitted, got {value!r}."
        )
    return value


def _size(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidSpecificationError(
            f"Value for {where} must be a non-negative integer, got {value!r}."
        )
    return value
