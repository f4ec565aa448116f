"""Reading candidates (dicts, pydantic models, plain objects) as documents for evaluation."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications.values import is_object_id

_SCALARS = (str, bytes, int, float, Decimal, datetime, uuid.UUID)


class AttributeDocument(Mapping[str, Any]):
    """A plain object seen as a document: its public attributes are its fields."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getitem__(self, key: str) -> Any:
        if key.startswith("_") and key != "_id":
            raise KeyError(key)
        try:
            return as_value(getattr(self._target, key))
        except AttributeError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return (name for name in vars(self._target) if not name.startswith("_"))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def as_value(value: Any) -> Any:
    """``value`` as the database would store it: enums by value, models and objects as documents."""
    if value is None or isinstance(value, (bool, *_SCALARS, Mapping, list, tuple)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if is_object_id(value):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        dumped: Mapping[str, Any] = dump(mode="python")
        return dumped
    if hasattr(value, "__dict__"):
        return AttributeDocument(value)
    return value


def as_document(candidate: Any) -> Mapping[str, Any]:
    """The candidate as a document: a mapping as is, a model dumped, an object by attribute.

    Raises:
        InvalidSpecificationError: the candidate is a scalar or a list, not a document.
    """
    document = as_value(candidate)
    if not isinstance(document, Mapping):
        raise InvalidSpecificationError(
            f"Cannot evaluate a specification against {type(candidate).__name__}: "
            "expected a dict, a pydantic model or an object with attributes."
        )
    return document
