"""MongoDB's comparison rules for Python values: type classes, equality and ordering."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum
from typing import Any


class TypeClass(IntEnum):
    """BSON type classes, in the order MongoDB sorts them.

    MongoDB compares values of different BSON types by a fixed order of type classes (MinKey,
    null, numbers, strings, objects, arrays, binary data, ObjectId, booleans, dates, timestamps,
    regular expressions, MaxKey); query comparison operators only match within one class
    (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/).

    """

    MIN_KEY = 1
    NULL = 2
    NUMBER = 3
    STRING = 4
    OBJECT = 5
    ARRAY = 6
    BINARY = 7
    OBJECT_ID = 8
    BOOL = 9
    DATE = 10
    TIMESTAMP = 11
    REGEX = 12
    MAX_KEY = 13


_BSON_CLASSES = {
    "ObjectId": TypeClass.OBJECT_ID,
    "Decimal128": TypeClass.NUMBER,
    "Int64": TypeClass.NUMBER,
    "Timestamp": TypeClass.TIMESTAMP,
    "Regex": TypeClass.REGEX,
    "MinKey": TypeClass.MIN_KEY,
    "MaxKey": TypeClass.MAX_KEY,
}


def type_class(value: Any) -> TypeClass:
    """The BSON type class ``value`` would be stored as (``None`` and missing are NULL).

    A type this module does not know is placed with MaxKey; see :func:`is_known_bson_value`.
    """
    if value is None:
        return TypeClass.NULL
    if isinstance(value, bool):
        return TypeClass.BOOL
    if isinstance(value, int | float | Decimal):
        return TypeClass.NUMBER
    if isinstance(value, str):
        return TypeClass.STRING
    if isinstance(value, Mapping):
        return TypeClass.OBJECT
    if isinstance(value, list | tuple):
        return TypeClass.ARRAY
    if isinstance(value, bytes | uuid.UUID):
        return TypeClass.BINARY
    if isinstance(value, datetime):
        return TypeClass.DATE
    if isinstance(value, re.Pattern):
        return TypeClass.REGEX  # the driver stores a compiled pattern as a BSON regex
    kind = type(value)
    if kind.__module__.startswith("bson") and kind.__name__ in _BSON_CLASSES:
        return _BSON_CLASSES[kind.__name__]
    return TypeClass.MAX_KEY


def is_known_bson_value(value: Any) -> bool:
    """Whether :func:`type_class` knows ``value``'s type (rather than guessing MaxKey)."""
    kind = type_class(value)
    if kind is not TypeClass.MAX_KEY:
        return True
    return type(value).__module__.startswith("bson") and type(value).__name__ == "MaxKey"


def _number(value: Any) -> int | float | Decimal:
    if isinstance(value, int | float | Decimal):
        return value
    # bson.Decimal128 / Int64 read without the package's codecs.
    converted: int | float | Decimal = (
        value.to_decimal() if hasattr(value, "to_decimal") else int(value)
    )
    return converted


def is_nan(value: Any) -> bool:
    """Whether the number ``value`` (int, float, Decimal, Decimal128, Int64) is NaN."""
    number = _number(value)
    return number.is_nan() if isinstance(number, Decimal) else math.isnan(number)


def _millis(value: datetime) -> int:
    # BSON dates are whole milliseconds since the epoch; naive datetimes are taken as UTC,
    # as the driver does when encoding them.
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000 + delta.microseconds // 1_000


def _binary_key(value: Any) -> tuple[int, int, bytes]:
    # MongoDB orders binary data by length, then subtype, then bytes; a UUID is subtype 4.
    if isinstance(value, uuid.UUID):
        return 16, 4, value.bytes
    return len(value), int(getattr(value, "subtype", 0)), bytes(value)


def sort_key(value: Any) -> Any:
    """A key ordering same-class values as MongoDB does (numbers by value, NaN lowest)."""
    kind = type_class(value)
    if kind is TypeClass.NUMBER:
        return (0, 0) if is_nan(value) else (1, _number(value))
    if kind is TypeClass.DATE:
        return _millis(value)
    if kind is TypeClass.BINARY:
        return _binary_key(value)
    if kind is TypeClass.OBJECT_ID:
        return bytes(value.binary)
    if kind in (TypeClass.NULL, TypeClass.MIN_KEY, TypeClass.MAX_KEY):
        return 0
    return value


def bson_equal(left: Any, right: Any) -> bool:
    """MongoDB equality: numbers across int/float/Decimal, documents field by field in order."""
    kind = type_class(left)
    if kind is not type_class(right):
        return False
    if kind is TypeClass.OBJECT:
        return len(left) == len(right) and all(
            lk == rk and bson_equal(left[lk], right[rk]) for lk, rk in zip(left, right, strict=True)
        )
    if kind is TypeClass.ARRAY:
        return len(left) == len(right) and all(
            bson_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if kind is TypeClass.NUMBER and (is_nan(left) or is_nan(right)):
        return is_nan(left) and is_nan(right)
    return bool(sort_key(left) == sort_key(right))


def bson_compare(left: Any, right: Any) -> int | None:
    """-1, 0 or 1 for same-class scalars; ``None`` when a NaN makes them incomparable.

    Query operators treat NaN as equal only to NaN and never greater or less than anything.
    """
    if type_class(left) is TypeClass.NUMBER and (is_nan(left) or is_nan(right)):
        return 0 if is_nan(left) and is_nan(right) else None
    a, b = sort_key(left), sort_key(right)
    return int(a > b) - int(a < b)
