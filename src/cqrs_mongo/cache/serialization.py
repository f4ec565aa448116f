"""Cache entry encoding: pydantic JSON values in a small envelope that carries a generation."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter
from pydantic_core import SchemaValidator

T = TypeVar("T")

MAGIC = b"cm1"
SEPARATOR = b"|"
PRESENT = b"J"
ABSENT = b"-"


class CacheDecodeError(ValueError):
    """Bytes read from the cache are not an entry this version of the package wrote."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One decoded envelope.

    Attributes:
        generation: the invalidation generation of the key when the value was read from the
            database; the entry is valid only while the key's generation is still this one.
        payload: the value's JSON, or ``None`` when the entry records that the id is absent.
    """

    generation: bytes
    payload: bytes | None


def encode_entry(generation: bytes, payload: bytes | None) -> bytes:
    """``cm1|<generation>|J<json>`` for a value, ``cm1|<generation>|-`` for an absent id.

    Raises:
        ValueError: ``generation`` contains the separator.
    """
    if SEPARATOR in generation:
        raise ValueError(f"Generation {generation!r} must not contain {SEPARATOR!r}.")
    body = ABSENT if payload is None else PRESENT + payload
    return SEPARATOR.join((MAGIC, generation, body))


def decode_entry(raw: bytes) -> CacheEntry:
    """The envelope in ``raw``.

    Raises:
        CacheDecodeError: ``raw`` is not an envelope (garbage, or another writer's format).
    """
    parts = raw.split(SEPARATOR, 2)
    if len(parts) != 3 or parts[0] != MAGIC or not parts[1]:
        raise CacheDecodeError(f"Cache entry does not start with {MAGIC!r}: {raw[:32]!r}.")
    generation, body = parts[1], parts[2]
    if body == ABSENT:
        return CacheEntry(generation, None)
    if body[:1] != PRESENT:
        raise CacheDecodeError(f"Cache entry body starts with {body[:1]!r}, expected {PRESENT!r}.")
    return CacheEntry(generation, body[1:])


class ModelCodec(Generic[T]):
    """Turns values of one type into JSON bytes and back, with pydantic.

    Works for pydantic models (an aggregate's ``version`` is an ordinary field, so it survives;
    pending events are private state, so they are never written), dataclasses and anything
    else pydantic can validate.

    Attributes:
        validate_json: validates JSON bytes as the codec's type, raising pydantic's
            ``ValidationError`` (a ``ValueError``); :meth:`load` is the same, raising
            :class:`CacheDecodeError`.
    """

    def __init__(self, target: type[T]) -> None:
        self.target = target
        self._adapter: TypeAdapter[T] = TypeAdapter(target)
        self.schema_version = _schema_version(target, self._adapter)
        # The core validator itself, skipping a Python frame per cached value; a validator
        # wrapped by a pydantic plugin is left to the adapter, which knows how to call it.
        validator = self._adapter.validator
        self.validate_json: Callable[[bytes], T] = (
            validator.validate_json
            if isinstance(validator, SchemaValidator)
            else self._adapter.validate_json
        )

    def dump(self, value: T) -> bytes:
        """``value`` as JSON bytes."""
        return self._adapter.dump_json(value)

    def load(self, payload: bytes) -> T:
        """A fresh value from JSON bytes.

        Raises:
            CacheDecodeError: the JSON does not validate as the codec's type.
        """
        try:
            return self.validate_json(payload)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            name = self.target.__qualname__
            raise CacheDecodeError(f"Cached {name} does not validate: {exc}") from exc


_codecs: dict[type[Any], ModelCodec[Any]] = {}


def codec_for(target: type[Any]) -> ModelCodec[Any]:
    """The (process-wide, memoised) codec of ``target``."""
    codec = _codecs.get(target)
    if codec is None:
        codec = _codecs[target] = ModelCodec(target)
    return codec


def _schema_version(target: type[Any], adapter: TypeAdapter[Any]) -> str:
    """``target.cache_schema_version`` if set, else a short hash of its JSON schema.

    A deploy that changes a model changes the hash, so it neither reads entries written by the
    old model nor has old processes read its entries.
    """
    explicit = getattr(target, "cache_schema_version", None)
    if explicit is not None:
        return f"v{explicit}"
    try:
        shape: Any = adapter.json_schema(mode="serialization")
    except Exception:  # types pydantic cannot describe still get a stable, shape-based key
        shape = repr(getattr(target, "__annotations__", {}))
    text = json.dumps(shape, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
