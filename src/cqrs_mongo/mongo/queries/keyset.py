"""Keyset (cursor) pagination: opaque tokens for a page's last row and the "after it" filter."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import bson
from bson.errors import BSONError

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.mongo.codecs import CODEC_OPTIONS
from cqrs_mongo.specifications import QueryOptions, SortKey
from cqrs_mongo.specifications.bson_order import TypeClass, type_class
from cqrs_mongo.specifications.values import FrozenDocument, freeze, thaw

TOKEN_VERSION = 1

_ID_ASCENDING = SortKey("_id", 1)

# $type aliases per type class, for "sorts after a value of another type" conditions.
# Arrays are left out: sort keys must hold single values (an array sorts by its extreme
# element, which no keyset condition can express).
_TYPE_ALIASES: dict[TypeClass, tuple[str, ...]] = {
    TypeClass.MIN_KEY: ("minKey",),
    TypeClass.NUMBER: ("number",),
    TypeClass.STRING: ("string", "symbol"),
    TypeClass.OBJECT: ("object",),
    TypeClass.BINARY: ("binData",),
    TypeClass.OBJECT_ID: ("objectId",),
    TypeClass.BOOL: ("bool",),
    TypeClass.DATE: ("date",),
    TypeClass.TIMESTAMP: ("timestamp",),
    TypeClass.REGEX: ("regex",),
    TypeClass.MAX_KEY: ("maxKey",),
}


def effective_ordering(options: QueryOptions) -> tuple[SortKey, ...]:
    """The options' ordering with ``_id`` appended (ascending) unless already present."""
    for key in options.ordering:
        if key.field == "_id":
            return options.ordering
    return (*options.ordering, _ID_ASCENDING)


def encode_cursor(document: Mapping[str, Any], options: QueryOptions) -> str:
    """The opaque token of ``document`` as the last row of a page ordered by ``options``.

    A token is base64url of a BSON document ``{"v": 1, "o": [[field, direction], ...],
    "k": [value, ...]}`` written with the package's codecs, so datetimes, Decimals, UUIDs and
    ObjectIds come back as the same types. Tokens are not signed: they only ever supply literal
    values to the filter, and a token issued for another ordering is refused.

    Pass the token to ``QueryOptions.with_cursor`` to get the next page. Missing sort
    fields are encoded as null, which is how the server sorts them.

    Raises:
        InvalidSpecificationError: the document has no ``_id``, or a sort value is an
            array or cannot be encoded.
    """
    ordering = effective_ordering(options)
    values = [_sort_value(document, key.field) for key in ordering]
    if values[-1] is None and ordering[-1].field == "_id":
        raise InvalidSpecificationError("Cannot encode a cursor for a document without '_id'.")
    payload = {
        "v": TOKEN_VERSION,
        "o": [[key.field, key.direction] for key in ordering],
        "k": values,
    }
    try:
        raw = bson.encode(payload, codec_options=CODEC_OPTIONS)
    except (BSONError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidSpecificationError(f"Cannot encode cursor values {values!r}: {exc}.") from exc
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str, options: QueryOptions) -> tuple[Any, ...]:
    """The sort values a token carries, one per key of ``effective_ordering(options)``.

    Raises:
        InvalidSpecificationError: the token is malformed, of another version, or was
            issued for another ordering.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = bson.decode(raw, codec_options=CODEC_OPTIONS)
    except (BSONError, binascii.Error, ValueError, TypeError, IndexError) as exc:
        raise InvalidSpecificationError("Cursor token is malformed.") from exc
    expected = [[key.field, key.direction] for key in effective_ordering(options)]
    if payload.get("v") != TOKEN_VERSION:
        raise InvalidSpecificationError(
            f"Cursor token has version {payload.get('v')!r}; expected {TOKEN_VERSION}."
        )
    if payload.get("o") != expected:
        raise InvalidSpecificationError(
            f"Cursor token was issued for ordering {payload.get('o')!r}, not {expected!r}."
        )
    values = payload.get("k")
    if not isinstance(values, list) or len(values) != len(expected):
        raise InvalidSpecificationError("Cursor token carries the wrong number of sort values.")
    return tuple(_checked_value(value) for value in values)


def keyset_filter(ordering: Sequence[SortKey], values: Sequence[Any]) -> dict[str, Any]:
    """The filter for rows sorting strictly after the row with sort ``values``.

    ``{"$or": [{k1: after v1}, {k1: v1, k2: after v2}, ..., {k1: v1, ..., _id: after id}]}``,
    where "after" is ``$gt`` (``$lt`` descending) within the value's type class, plus a
    ``$type`` branch for the type classes the server sorts after it. Null and missing sort
    first ascending: after ``null`` comes ``{k: {"$ne": null}}``; before anything
    descending comes ``{k: null}`` (null or missing), and ``{k: null}`` is also the tie.
    """
    branches: list[dict[str, Any]] = []
    prefix: dict[str, Any] = {}
    for key, value in zip(ordering, values, strict=True):
        for condition in _after(key, value):
            branches.append({**prefix, key.field: condition})
        prefix[key.field] = _equal(value)
    if not branches:
        return {"_id": {"$in": []}}  # nothing sorts after this row
    return {"$or": branches} if len(branches) > 1 else branches[0]


def _after(key: SortKey, value: Any) -> list[Any]:
    kind = type_class(value)
    if not key.descending:
        if kind is TypeClass.NULL:
            return [{"$ne": None}]
        later = [alias for c, names in _TYPE_ALIASES.items() if c > kind for alias in names]
        return [{"$gt": thaw(value)}] + ([{"$type": later}] if later else [])
    if kind is TypeClass.NULL:
        return []  # nothing but MinKey sorts before null
    earlier = [
        alias
        for c, names in _TYPE_ALIASES.items()
        if c < kind and c is not TypeClass.MIN_KEY
        for alias in names
    ]
    conditions: list[Any] = [{"$lt": thaw(value)}, {"$eq": None}]
    return conditions + ([{"$type": earlier}] if earlier else [])


def _equal(value: Any) -> Any:
    # $eq keeps a sub-document value literal; None matches null and missing, the same tie
    # the server's sort makes.
    return {"$eq": thaw(value)}


def _sort_value(document: Mapping[str, Any], path: str) -> Any:
    current: Any = document
    if "." not in path:
        current = document.get(path)  # a top-level field, the usual sort key
    else:
        for segment in path.split("."):
            if not isinstance(current, Mapping) or segment not in current:
                return None
            current = current[segment]
    if isinstance(current, list | tuple):
        raise InvalidSpecificationError(
            f"Sort field {path!r} holds an array; keyset pagination needs single values."
        )
    return current


def _checked_value(value: Any) -> Any:
    frozen = freeze(value, "a cursor sort value")
    if isinstance(frozen, tuple):
        raise InvalidSpecificationError("Cursor token carries an array sort value.")
    return thaw(frozen) if isinstance(frozen, FrozenDocument) else frozen
