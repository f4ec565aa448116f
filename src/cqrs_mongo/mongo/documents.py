"""Mapping between pydantic models (aggregates, DTOs) and Mongo documents with ``_id``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from cqrs_mongo.errors import check_usable_id

M = TypeVar("M", bound=BaseModel)

# Id types checked by identity before the slower check (nearly every id is one of these).
_SCALAR_IDS: frozenset[type[Any]] = frozenset({str, int})


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

    __slots__ = ("_plain_validate", "id_field", "model_type")

    def __init__(self, model_type: type[M], id_field: str = "id") -> None:
        self.model_type = model_type
        self.id_field = id_field
        # model_validate only checks its keyword flags and calls the schema validator; with
        # none passed, calling the validator directly is the same, one Python frame less per
        # row. A class overriding model_validate keeps going through its override.
        override = getattr(model_type.model_validate, "__func__", None)
        self._plain_validate = override is _BASE_MODEL_VALIDATE

    def to_document(self, model: M) -> dict[str, Any]:
        """The document storing ``model``, with its id under ``_id``.

        Raises:
            DocumentEncodingError: the id is a document or an array (it could be stored,
                but never loaded back by id).
        """
        document = model.model_dump(mode="python")
        identifier = document["_id"] = document.pop(self.id_field)
        if type(identifier) not in _SCALAR_IDS:
            check_usable_id(type(model).__name__, identifier, document.get("version"))
        return document

    def from_document(self, document: Mapping[str, Any]) -> M:
        """The model stored in ``document`` (which may be modified: the driver's own copy).

        Raises:
            pydantic.ValidationError: the document does not fit the model.
        """
        data = document if isinstance(document, dict) else dict(document)
        if "_id" in data:
            data[self.id_field] = data.pop("_id")
        if self._plain_validate:
            # Looked up per call: pydantic replaces the validator when a model is rebuilt.
            model: M = self.model_type.__pydantic_validator__.validate_python(data)
            return model
        return self.model_type.model_validate(data)

    def from_documents(self, documents: Iterable[Mapping[str, Any]]) -> list[M]:
        """``from_document`` of each of ``documents``, in order (e.g. one page of rows).

        Raises:
            pydantic.ValidationError: a document does not fit the model.
        """
        if not self._plain_validate:
            return [self.from_document(document) for document in documents]
        validate = self.model_type.__pydantic_validator__.validate_python
        id_field = self.id_field
        models: list[M] = []
        for document in documents:
            data = document if isinstance(document, dict) else dict(document)
            if "_id" in data:
                data[id_field] = data.pop("_id")
            models.append(validate(data))
        return models


_BASE_MODEL_VALIDATE = BaseModel.model_validate.__func__  # type: ignore[attr-defined]
