"""Keyset (cursor) pagination: opaque tokens for a page's last row and the "after it" filter."""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from typing import Any

import bson
from bson.errors import BSONError

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.mongo.codecs import CODEC_OPTIONS
from cqrs_mongo.specifications import QueryOptions, SortKey
from cqrs_mongo.specifications.bson_order import TypeClass, is_known_bson_value, is_nan, type_class
from cqrs_mongo.specifications.paths import sort_path_value as path_value
from cqrs_mongo.specifications.values import thaw

TOKEN_VERSION = 1

_ID_ASCENDING = SortKey("_id", 1)

# $type aliases per type class, for "sorts after a value of another type" conditions.
# Null is left out (``{"$eq": None}`` also reaches missing fields), and so are arrays: sort
# keys must hold single values (an array sorts by its extreme element, which no keyset
# condition can express; keyset_filter matches such rows separately).
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
        InvalidSpecificationError: the document has no ``_id``, or a sort path reaches an
            array, holds a regular expression or cannot be encoded.
    """
    ordering = effective_ordering(options)
    values = [sort_path_value(document, key.field) for key in ordering]
    for key, value in zip(ordering, values, strict=True):
        if type_class(value) is TypeClass.REGEX:
            # The server refuses a regular expression as the bound of $gt/$lt.
            raise InvalidSpecificationError(
                f"Sort field {key.field!r} holds a regular expression in the row with _id "
                f"{document.get('_id')!r}; keyset pagination cannot continue after one."
            )
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

    ``{"$or": [{k1: after v1}, {k1: v1, k2: after v2}, ..., {k1: v1, ..., _id: after id},
    {k1-prefix: {"$type": "array"}}, ...]}``. "After" is ``$gt`` (``$lt`` descending) within
    the value's type class plus a ``$type`` branch for the classes the server sorts after
    (before) it, with the server's places for null and missing (one class, above MinKey),
    NaN (below every other number), MinKey and MaxKey spelled out, since ``$gt``/``$lt``
    never reach across them (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/).

    The last branches match every row whose sort path reaches an array at any depth: the
    server sorts such a row by its smallest (ascending) or largest (descending) element,
    which no range condition can select exactly. Matching them always makes each one come
    back on the page where the server places it, where :func:`check_keyset_rows` refuses
    it, so an array row is never skipped or silently repeated.
    """
    branches: list[dict[str, Any]] = []
    prefix: dict[str, Any] = {}
    for key, value in zip(ordering, values, strict=True):
        for condition in _after(key, value):
            branches.append({**prefix, key.field: condition})
        prefix[key.field] = _equal(value)
    for key in ordering:
        if key.field != "_id":  # _id can never hold an array
            branches.extend({path: {"$type": "array"}} for path in _prefixes(key.field))
    if not branches:
        return {"_id": {"$in": []}}  # nothing sorts after this row
    return {"$or": branches} if len(branches) > 1 else branches[0]


def _prefixes(path: str) -> list[str]:
    segments = path.split(".")
    return [".".join(segments[:n]) for n in range(1, len(segments) + 1)]


def _aliases(classes: Any) -> list[str]:
    return [alias for c in classes for alias in _TYPE_ALIASES.get(c, ())]


def _type_branch(classes: Any) -> list[Any]:
    aliases = _aliases(classes)
    return [{"$type": aliases}] if aliases else []


def _after(key: SortKey, value: Any) -> list[Any]:
    """Conditions on one key for "sorts strictly after ``value``" in the key's direction."""
    kind = type_class(value)
    if not key.descending:
        later = [c for c in TypeClass if c > kind]
        if kind is TypeClass.MIN_KEY:
            return [{"$eq": None}, *_type_branch(later)]
        if kind in (TypeClass.NULL, TypeClass.MAX_KEY):
            return _type_branch(later)  # not {"$ne": None}: that would match MinKey too
        if kind is TypeClass.NUMBER and is_nan(value):
            # NaN sorts below every other number, and $gt NaN matches nothing.
            return [{"$gte": -math.inf}, *_type_branch(later)]
        return [{"$gt": thaw(value)}, *_type_branch(later)]
    earlier = [c for c in TypeClass if c < kind and c is not TypeClass.NULL]
    if kind is TypeClass.MIN_KEY:
        return []
    if kind is TypeClass.NULL:
        return _type_branch(earlier)
    null_and_below = [{"$eq": None}, *_type_branch(earlier)]
    if kind is TypeClass.MAX_KEY or (kind is TypeClass.NUMBER and is_nan(value)):
        return null_and_below
    if kind is TypeClass.NUMBER:
        # NaN sorts below every other number and $lt never matches it.
        return [{"$lt": thaw(value)}, {"$eq": math.nan}, *null_and_below]
    return [{"$lt": thaw(value)}, *null_and_below]


def _equal(value: Any) -> Any:
    # $eq keeps a sub-document value literal; None matches null and missing, the same tie
    # the server's sort makes.
    return {"$eq": thaw(value)}


def sort_path_value(document: Mapping[str, Any], path: str) -> Any:
    """The value sort key ``path`` has in the stored row ``document`` (see
    :func:`cqrs_mongo.specifications.paths.sort_path_value`)."""
    return path_value(document, path, row_id=document.get("_id"))


def check_keyset_rows(documents: Sequence[Mapping[str, Any]], options: QueryOptions) -> None:
    """Refuse a cursor page holding a row whose sort path reaches an array.

    Only pages read with a cursor are checked: offset pages sort arrays exactly as the
    server does. Such a row matches every keyset filter (see :func:`keyset_filter`), so it
    comes back on the first cursor page the server sorts it onto, and is refused there.

    Raises:
        InvalidSpecificationError: a row's sort path reaches an array.
    """
    if options.cursor is None:
        return
    ordering = effective_ordering(options)
    for document in documents:
        for key in ordering:
            sort_path_value(document, key.field)


def page_cursor(documents: Sequence[Mapping[str, Any]], options: QueryOptions) -> str | None:
    """The token of the page after ``documents``, or ``None`` when the page is not full.

    Raises:
        InvalidSpecificationError: a row of the page has a sort path reaching an array (it
            could not be told apart from the rows after it), or the last row cannot be
            encoded.
    """
    if not documents or options.limit is None or len(documents) < options.limit:
        return None
    ordering = effective_ordering(options)
    for document in documents:
        for key in ordering:
            sort_path_value(document, key.field)
    return encode_cursor(documents[-1], options)


def _checked_value(value: Any) -> Any:
    # Tokens are decoded from BSON, so every value is literal data; only the kinds that
    # cannot be a single sort value, or that this package does not know, are refused.
    if isinstance(value, list | tuple):
        raise InvalidSpecificationError("Cursor token carries an array sort value.")
    if not is_known_bson_value(value) or type_class(value) is TypeClass.REGEX:
        raise InvalidSpecificationError(
            f"Cursor token carries a sort value of unsupported type {type(value).__name__}."
        )
    return value
