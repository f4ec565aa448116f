"""What a specification must fit in to reach a server: depth, size, text and Decimal128 limits.

Each is checked when a node is built, so a specification that exists can also be compiled,
evaluated, serialised, hashed and sent; none fails later with a driver or Python error.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError

MAX_DEPTH = 48
"""Deepest nesting accepted, counting each group, condition and value level once.

A compiled group adds two BSON levels (``{"$or": [...]}``), so this keeps filters well inside
the server's nesting limits, and every recursive walk of a tree far from Python's stack limit.
"""

MAX_SPECIFICATION_BYTES = 8 * 1024 * 1024
"""Largest estimated encoded size of a specification's values: half a 16 MiB BSON document,
leaving room for the rest of the command (keyset conditions, sort, projection)."""

# Decimal values are stored as Decimal128: 34 significant digits, exponent -6176..6111; the
# same context the driver encodes with, so "representable" means the same thing here.
_DECIMAL128 = decimal.Context(
    prec=34,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-6143,
    Emax=6144,
    capitals=1,
    clamp=1,
    traps=[decimal.InvalidOperation, decimal.Overflow, decimal.Inexact],
)
_FIXED_SIZE = frozenset({int, float, bool, Decimal, type(None)})
_SURROGATES = re.compile("[\ud800-\udfff]")


def check_text(text: str, what: str) -> int:
    """The UTF-8 size of ``text``, which must be encodable (no lone surrogate).

    A lone surrogate (``"\\ud800"``, reachable from JSON) has no UTF-8 form, so no driver can
    send it.

    Raises:
        InvalidSpecificationError: ``text`` holds a lone surrogate.
    """
    if text.isascii():
        return len(text)
    found = _SURROGATES.search(text)
    if found is not None:
        raise InvalidSpecificationError(
            f"{what} holds the lone surrogate {found.group()!r} at position {found.start()}, "
            "which is not valid UTF-8."
        )
    return len(text.encode("utf-8"))


def check_decimal(value: Decimal, where: str) -> None:
    """Refuse a Decimal that Decimal128 cannot hold exactly.

    Raises:
        InvalidSpecificationError: more than 34 significant digits (after dropping
            trailing zeros that round away exactly), an exponent out of range, or a NaN with
            a payload.
    """
    try:
        stored = _DECIMAL128.create_decimal(value)
    except decimal.DecimalException:
        stored = None
    if stored is None or (stored.is_nan() and stored.as_tuple().digits):
        raise InvalidSpecificationError(
            f"Value for {where} is {value}, which cannot be stored as a 128-bit decimal "
            "(at most 34 significant digits, exponent from -6176 to 6111)."
        )


def check_depth(depth: int, what: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH`.

    Raises:
        InvalidSpecificationError: ``depth`` exceeds the limit.
    """
    if depth > MAX_DEPTH:
        raise InvalidSpecificationError(f"{what} is nested deeper than {MAX_DEPTH} levels.")


def check_size(size: int, what: str) -> None:
    """Refuse values estimated larger than :data:`MAX_SPECIFICATION_BYTES`.

    Raises:
        InvalidSpecificationError: ``size`` exceeds the limit.
    """
    if size > MAX_SPECIFICATION_BYTES:
        raise InvalidSpecificationError(
            f"{what} is too large: its values take about {size} bytes encoded; at most "
            f"{MAX_SPECIFICATION_BYTES} fit in a query."
        )


def measure(value: Any) -> tuple[int, int]:
    """``(depth, estimated encoded bytes)`` of a frozen value (depth 0 for a scalar).

    The estimate is BSON's: a type byte and a key per element, the payload's own size.
    ``value`` must come from ``freeze``, which bounds its depth.
    """
    kind = type(value)
    if kind is str or kind is bytes:
        return 0, 5 + len(value)
    if kind in _FIXED_SIZE:
        return 0, 16
    if isinstance(value, tuple):
        depth, size = 0, 5
        for index, item in enumerate(value):
            item_depth, item_size = measure(item)
            depth = max(depth, item_depth)
            size += 2 + len(str(index)) + item_size
        return depth + 1, size
    if isinstance(value, Mapping):
        depth, size = 0, 5
        for key, item in value.items():
            item_depth, item_size = measure(item)
            depth = max(depth, item_depth)
            size += 2 + len(key) + item_size
        return depth + 1, size
    if isinstance(value, str):
        return 0, 5 + len(value)
    if isinstance(value, bytes):
        return 0, 5 + len(value)
    return 0, 16
