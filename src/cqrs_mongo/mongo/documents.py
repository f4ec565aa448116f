"""Mapping between pydantic models (aggregates, DTOs) and Mongo documents with ``_id``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


class DocumentMapper(Generic[M]):
    """Turns a model into a document and back; the model's id field is stored as ``_id``.

    The rest of the document is ``model_dump(mode="python")``: Decimal, UUID, datetime and
    enum values stay Python objects and the codecs store them as BSON types. Loading calls
    ``model_validate`` on the document itself, renamed in place, so no copy is made.

    Example:
        >>> class Item(BaseModel):
        ...     id: str
        ...     qty: int = 0
        >>> mapper = DocumentMapper(Item)
        >>> mapper.to_document(Item(id="i-1", qty=2))
        {'qty': 2, '_id': 'i-1'}
        >>> mapper.from_document({"_id": "i-1", "qty": 2})
        Item(id='i-1', qty=2)
    """

    __slots__ = ("id_field", "model_type")

    def __init__(self, model_type: type[M], id_field: str = "id") -> None:
        self.model_type = model_type
        self.id_field = id_field

    def to_document(self, model: M) -> dict[str, Any]:
        """The document storing ``model``, with its id under ``_id``."""
        document = model.model_dump(mode="python")
        document["_id"] = document.pop(self.id_field)
        return document

    def from_document(self, document: Mapping[str, Any]) -> M:
        """The model stored in ``document`` (which may be modified: the driver's own copy)."""
        data = document if isinstance(document, dict) else dict(document)
        if "_id" in data:
            data[self.id_field] = data.pop("_id")
        return self.model_type.model_validate(data)
