"""Keyset (cursor) pagination for the in-memory read models, in MongoDB's sort order.

Rows are ordered as the server orders them (type class first, null and missing together,
NaN below every other number), with the id field as the last, ascending tie-breaker, and a
token carries the sort values of a page's last row. Tokens are base64url JSON with a tag per
value (they are not portable to the Mongo handlers, whose tokens are BSON).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cmp_to_key
from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications import SortKey
from cqrs_mongo.specifications.bson_order import sort_key, type_class
from cqrs_mongo.specifications.paths import sort_path_value

TOKEN_VERSION = 1


def effective_ordering(ordering: Sequence[SortKey], id_field: str) -> tuple[SortKey, ...]:
    """``ordering`` with ``id_field`` appended (ascending) unless already present."""
    if any(key.field == id_field for key in ordering):
        return tuple(ordering)
    return (*ordering, SortKey(id_field, 1))


def sort_values(document: Mapping[str, Any], ordering: Sequence[SortKey]) -> tuple[Any, ...]:
    """The document's value for each sort key (``None`` for a missing field).

    Raises:
        InvalidSpecificationError: a sort path reaches an array; the server sorts such a row
            by an extreme element, which keyset pages cannot follow (the Mongo handlers
            refuse it too).
    """
    return tuple(sort_path_value(document, key.field) for key in ordering)


def ordered(
    documents: Sequence[Mapping[str, Any]], ordering: Sequence[SortKey]
) -> list[Mapping[str, Any]]:
    """``documents`` in the server's order for ``ordering`` (arrays sort as plain values)."""
    keyed = [(_loose_values(document, ordering), document) for document in documents]

    def by_values(a: tuple[tuple[Any, ...], Any], b: tuple[tuple[Any, ...], Any]) -> int:
        return compare(a[0], b[0], ordering)

    keyed.sort(key=cmp_to_key(by_values))
    return [document for _, document in keyed]


def after(
    documents: Sequence[Mapping[str, Any]], ordering: Sequence[SortKey], values: Sequence[Any]
) -> list[Mapping[str, Any]]:
    """The already ordered ``documents`` sorting strictly after the row with ``values``."""
    return [d for d in documents if compare(sort_values(d, ordering), values, ordering) > 0]


def compare(left: Sequence[Any], right: Sequence[Any], ordering: Sequence[SortKey]) -> int:
    """-1, 0 or 1: how a row with sort values ``left`` sorts against one with ``right``."""
    for a, b, key in zip(left, right, ordering, strict=True):
        ka, kb = (type_class(a), sort_key(a)), (type_class(b), sort_key(b))
        try:
            order = int(ka > kb) - int(ka < kb)
        except TypeError as exc:
            raise InvalidSpecificationError(
                f"Cannot order values {a!r} and {b!r} of field {key.field!r} in memory."
            ) from exc
        if order:
            return -order if key.descending else order
    return 0


def encode_token(values: Sequence[Any], ordering: Sequence[SortKey]) -> str:
    """The opaque token for a page ending on a row with sort ``values``.

    Raises:
        InvalidSpecificationError: a value is of a type tokens cannot carry.
    """
    payload = {
        "v": TOKEN_VERSION,
        "o": [[key.field, key.direction] for key in ordering],
        "k": [_tagged(value) for value in values],
    }
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_token(token: str, ordering: Sequence[SortKey]) -> tuple[Any, ...]:
    """The sort values a token carries, one per key of ``ordering``.

    Raises:
        InvalidSpecificationError: the token is malformed, of another version, or was
            issued for another ordering.
    """
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidSpecificationError("Cursor token is malformed.") from exc
    expected = [[key.field, key.direction] for key in ordering]
    if not isinstance(payload, dict) or payload.get("v") != TOKEN_VERSION:
        raise InvalidSpecificationError("Cursor token is malformed or of another version.")
    if payload.get("o") != expected:
        raise InvalidSpecificationError(
            f"Cursor token was issued for ordering {payload.get('o')!r}, not {expected!r}."
        )
    values = payload.get("k")
    if not isinstance(values, list) or len(values) != len(expected):
        raise InvalidSpecificationError("Cursor token carries the wrong number of sort values.")
    return tuple(_untagged(value) for value in values)


def _loose_values(document: Mapping[str, Any], ordering: Sequence[SortKey]) -> tuple[Any, ...]:
    values = []
    for key in ordering:
        current: Any = document
        for segment in key.field.split("."):
            current = current.get(segment) if isinstance(current, Mapping) else None
        values.append(current)
    return tuple(values)


_TAGS: dict[str, Any] = {
    "d": Decimal,
    "t": datetime.fromisoformat,
    "u": uuid.UUID,
    "x": lambda text: base64.b64decode(text),
}


def _tagged(value: Any) -> list[Any]:
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", str(value)]
    if isinstance(value, float):
        return ["f", repr(value) if math.isfinite(value) else str(value)]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, Decimal):
        return ["d", str(value)]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    if isinstance(value, bytes):
        return ["x", base64.b64encode(value).decode("ascii")]
    raise InvalidSpecificationError(
        f"Cannot encode an in-memory cursor after a sort value of type {type(value).__name__}."
    )


def _untagged(item: Any) -> Any:
    try:
        tag, *rest = item
        if tag == "n":
            return None
        if tag == "b" and isinstance(rest[0], bool):
            return rest[0]
        if tag == "i":
            return int(rest[0])
        if tag == "f":
            return float(rest[0])
        if tag == "s" and isinstance(rest[0], str):
            return rest[0]
        return _TAGS[tag](rest[0])
    except (TypeError, ValueError, KeyError, IndexError, ArithmeticError) as exc:
        raise InvalidSpecificationError("Cursor token carries a malformed sort value.") from exc
