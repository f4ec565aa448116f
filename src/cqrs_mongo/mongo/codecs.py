"""BSON codec options, set once per client: UTC datetimes, standard UUIDs, Decimal128, enums."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC
from decimal import Decimal
from typing import Any

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions, TypeCodec, TypeRegistry
from bson.decimal128 import Decimal128


class DecimalCodec(TypeCodec):
    """``Decimal`` <-> ``Decimal128``, at any depth (lists and sub-documents included)."""

    python_type = Decimal
    bson_type = Decimal128

    def transform_python(self, value: Any) -> Decimal128:
        return Decimal128(value)

    def transform_bson(self, value: Any) -> Decimal:
        return value.to_decimal()  # type: ignore[no-any-return]


def _fallback_encoder(value: Any) -> Any:
    # Enums are stored by value, so the stored documents stay readable by other clients and
    # pydantic validates them back into the enum type.
    if isinstance(value, enum.Enum):
        return value.value
    return value


TYPE_REGISTRY = TypeRegistry([DecimalCodec()], fallback_encoder=_fallback_encoder)

CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    tz_aware=True,
    tzinfo=UTC,
    uuid_representation=UuidRepresentation.STANDARD,
    type_registry=TYPE_REGISTRY,
)
"""The codec options every client and database handle of the package uses."""

CLIENT_CODEC_KWARGS: dict[str, Any] = {
    "tz_aware": True,
    "tzinfo": UTC,
    "uuidRepresentation": "standard",
    "type_registry": TYPE_REGISTRY,
}
"""The same options, as keyword arguments for a client constructor."""


def to_bson_values(value: Any) -> Any:
    """``value`` with every Python type the codecs know replaced by its BSON type.

    UUIDs become subtype-4 ``Binary``, ``Decimal`` becomes ``Decimal128``, enums their value,
    datetimes naive UTC at millisecond precision: what a server would store. Used for stores
    that accept no codec options (mongomock), so they compare and sort what a server would.
    """
    return bson.decode(bson.encode({"v": value}, codec_options=CODEC_OPTIONS))["v"]


def from_bson_values(document: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`to_bson_values` for a document read back from such a store."""
    return bson.decode(bson.encode(document), codec_options=CODEC_OPTIONS)


# --- encodability: what cannot be stored, named before anything is sent -------------------

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""BSON's document size limit (the server's ``maxBsonObjectSize``)."""

ENCODING_ERRORS: tuple[type[Exception], ...] = (
    bson.errors.InvalidDocument,
    OverflowError,
    UnicodeEncodeError,
)
"""What ``bson.encode`` raises for a value BSON cannot hold."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def find_unencodable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The dotted path of the first value in ``value`` that BSON cannot hold, and why.

    Walks dicts, lists and tuples; everything else is tried on its own. ``None`` when every
    value encodes. Used on the failure path only, to name the offending field.

    Example:
        >>> find_unencodable({"a": [1, {"b": {1, 2}}]})
        ('a.1.b', 'a set cannot be stored in BSON')
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str):
                return here, f"a document key must be a string, not {type(key).__name__}"
            if "\x00" in key:
                return here, "a document key must not contain NUL"
            found = find_unencodable(item, here)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_unencodable(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64_MIN <= value <= _INT64_MAX:
            return path, f"the int {value} does not fit in 64 bits"
        return None
    try:
        bson.encode({"v": value}, codec_options=CODEC_OPTIONS)
    except ENCODING_ERRORS as exc:
        return path, _reason(value, exc)
    return None


def _reason(value: Any, exc: Exception) -> str:
    if isinstance(exc, UnicodeEncodeError):
        return "the string is not valid UTF-8 (a lone surrogate)"
    kind = type(value)
    article = "an" if kind.__name__[:1].lower() in "aeiou" else "a"
    return f"{article} {kind.__name__} cannot be stored in BSON"


def encoded_size(document: Mapping[str, Any]) -> int:
    """The size of ``document`` encoded with the package's codecs.

    Raises:
        bson.errors.InvalidDocument, OverflowError, UnicodeEncodeError: it cannot be encoded
            (see :data:`ENCODING_ERRORS`).
    """
    return len(bson.encode(document, codec_options=CODEC_OPTIONS))
