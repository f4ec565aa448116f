"""The query side over in-memory projections: read models from what the runner wrote.

:class:`InMemoryProjectionPersistence` answers ``fetch`` by ids and by specification from the
documents an :class:`~cqrs_mongo.projections.InMemoryProjectionRunner` wrote, as
``ProjectionPersistence`` does from a Mongo projection: the projection's bookkeeping never
reaches a DTO, the id is under the DTO's id field, and specifications, ordering and pagination
follow MongoDB's rules (the in-memory query handler's). By default the projection store is the
one shared by the unit of work's in-memory store, the same one :func:`shared_projection_store`
returns for the runner.
"""

from __future__ import annotations

import typing
from collections.abc import Set
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from cqrs_mongo.errors import ConfigurationError
from cqrs_mongo.persistence.in_memory import (
    InMemoryQueryPersistence,
    InMemoryStore,
    InMemoryUnitOfWork,
)
from cqrs_mongo.projections.in_memory import InMemoryProjectionStore
from cqrs_mongo.specifications import QueryOptions, Specification

DTO = TypeVar("DTO")
ID = TypeVar("ID")

PROJECTIONS_KEY = "cqrs_mongo.projections"


def shared_projection_store(source: Any) -> InMemoryProjectionStore:
    """The projection store shared by every unit of ``source``'s in-memory store.

    ``source`` is an ``InMemoryUnitOfWorkFactory``, an ``InMemoryUnitOfWork`` or an
    ``InMemoryStore``; give it to ``InMemoryProjectionRunner(projection, store=...)``.

    Raises:
        TypeError: ``source`` holds no in-memory store.
    """
    store = getattr(source, "store", source)
    if not isinstance(store, InMemoryStore):
        raise TypeError(
            f"Expected an in-memory unit of work, its factory or its store, got {source!r}."
        )
    return store.shared(PROJECTIONS_KEY, InMemoryProjectionStore)


class InMemoryProjectionPersistence(Generic[DTO, ID]):
    """Both query ports over an in-memory projection (``register_query`` and
    ``register_query_spec``), shaped like the spec's projection-backed handler.

    Example:
        >>> class OrderSummaries(InMemoryProjectionPersistence[OrderSummaryDTO, str]):
        ...     collection = "order_summaries"  # doctest: +SKIP
        ...     def to_dto(self, doc: dict) -> OrderSummaryDTO:
        ...         return OrderSummaryDTO(**doc)

    Attributes:
        dto_type: the read model class (default: the first generic parameter).
        collection: the projection's name.
        id_field: the DTO field the document's ``_id`` goes to.
    """

    dto_type: ClassVar[type[Any]]
    collection: ClassVar[str]
    id_field: ClassVar[str] = "id"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "dto_type" not in cls.__dict__:
            for base in cls.__dict__.get("__orig_bases__", ()):
                args = typing.get_args(base)
                if args and isinstance(args[0], type):
                    cls.dto_type = args[0]
                    break

    def __init__(self, projection_store: InMemoryProjectionStore | None = None) -> None:
        """Create the handler; without ``projection_store`` it reads the unit's shared one.

        Raises:
            ConfigurationError: the class sets no ``collection`` or no ``dto_type``.
        """
        cls = type(self)
        if not isinstance(getattr(cls, "collection", None), str) or not hasattr(cls, "dto_type"):
            raise ConfigurationError(
                f"{cls.__qualname__} must set `collection` and a dto_type (or subclass "
                f"InMemoryProjectionPersistence[MyDTO, IdType])."
            )
        self.projection_store = projection_store
        self._view = self._view_handler()

    def to_dto(self, document: dict[str, Any]) -> DTO:
        """The read model in ``document`` (id under ``id_field``, no bookkeeping fields).

        Raises:
            ConfigurationError: ``dto_type`` is not a pydantic model and this is not overridden.
        """
        if not issubclass(self.dto_type, BaseModel):
            raise ConfigurationError(
                f"{type(self).__qualname__}: override to_dto for non-pydantic {self.dto_type!r}."
            )
        return typing.cast(DTO, self.dto_type.model_validate(document))

    async def fetch(self, criteria: Any, uow: InMemoryUnitOfWork) -> Any:
        """A list of read models for a list of ids; a ``SearchResult`` for a specification.

        Raises:
            InvalidSpecificationError: ``criteria`` is a single string or cannot be evaluated.
        """
        if isinstance(criteria, (Specification, QueryOptions)):
            view = InMemoryUnitOfWork(self._snapshot(uow))
            await view.begin()  # a private, read-only copy: nothing to commit or release
            return await self._view.fetch(criteria, view)
        if isinstance(criteria, (str, bytes)) or not isinstance(criteria, (list, tuple, Set)):
            return await self._view.fetch(criteria, uow)  # refuses it with the usual message
        store = self._store(uow)
        found = (store.get(self.collection, doc_id) for doc_id in dict.fromkeys(criteria))
        return [self.to_dto(self._user_document(doc)) for doc in found if doc is not None]

    def _store(self, uow: Any) -> InMemoryProjectionStore:
        if self.projection_store is not None:
            return self.projection_store
        return shared_projection_store(uow)

    def _snapshot(self, uow: Any) -> InMemoryStore:
        documents = self._store(uow).documents(self.collection)
        snapshot = InMemoryStore()
        rows = snapshot.collection(self.collection)
        for document in documents:
            row = self._user_document(document)
            rows[row[self.id_field]] = row
        return snapshot

    def _user_document(self, document: dict[str, Any]) -> dict[str, Any]:
        if "_id" in document and self.id_field != "_id":
            document[self.id_field] = document.pop("_id")
        return document

    def _view_handler(self) -> InMemoryQueryPersistence[Any, Any]:
        outer = self
        model = self.dto_type if issubclass(self.dto_type, BaseModel) else BaseModel

        class View(InMemoryQueryPersistence[Any, Any]):
            dto_type = model
            collection = outer.collection
            id_field = outer.id_field

            def _to_dto(self, document: dict[str, Any], options: QueryOptions) -> Any:
                if options.fields:
                    return super()._to_dto(document, options)
                return outer.to_dto(document)

        return View()
