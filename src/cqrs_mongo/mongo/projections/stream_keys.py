"""Stream ids as short, type-exact strings: the ``_id`` of a stream's position document.

A position's ``_id`` must be a scalar (a sub-document ``_id`` makes an ``$in`` lookup a
collection scan on some servers) and must tell ``1`` from ``1.0`` from ``"1"``. Stream ids are
user data of any BSON type, so the key is an encoding of the id:

* a string id ``s`` becomes ``"s" + base64url(utf8(s))`` without padding;
* any other id ``v`` becomes ``"b" + base64url(BSON({"": v}))`` without padding.

Both alphabets are ``[A-Za-z0-9_-]``, so a key is a plain field name; the encoding is injective
(a string and a number with the same text get different keys) and reversible with
:func:`decode_stream_key`.
"""

from __future__ import annotations

import base64
from typing import Any

import bson
from bson.binary import UuidRepresentation
from bson.codec_options import CodecOptions

_STRING = "s"
_BSON = "b"
# Standard UUIDs, as the package's clients store them, so a UUID id keys the same everywhere.
_KEY_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(
    uuid_representation=UuidRepresentation.STANDARD
)


def encode_stream_key(stream_id: Any) -> str:
    """The field-name-safe key of ``stream_id``.

    Example:
        >>> encode_stream_key("order.1")
        'sb3JkZXIuMQ'
        >>> decode_stream_key(encode_stream_key("$weird.id"))
        '$weird.id'
    """
    if isinstance(stream_id, str):
        return _STRING + _b64(stream_id.encode("utf-8"))
    return _BSON + _b64(bson.encode({"": stream_id}, codec_options=_KEY_CODEC))


def decode_stream_key(key: str) -> Any:
    """The stream id that :func:`encode_stream_key` turned into ``key``.

    Raises:
        ValueError: ``key`` was not made by :func:`encode_stream_key`.
    """
    tag, body = key[:1], key[1:]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if tag == _STRING:
        return raw.decode("utf-8")
    if tag == _BSON:
        return bson.decode(raw, codec_options=_KEY_CODEC)[""]
    raise ValueError(f"Stream key {key!r}: expected a prefix 's' or 'b', found {tag!r}.")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
