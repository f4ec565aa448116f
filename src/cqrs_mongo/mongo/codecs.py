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
