"""Read-side handlers: read models (DTOs) by ids, by specification, and pages with a total."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator, Sequence, Set
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from pymongo import IndexModel
from pymongo.errors import OperationFailure

from cqrs_mongo.errors import ConfigurationError, InvalidSpecificationError
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.documents import DocumentMapper
from cqrs_mongo.mongo.indexes import IndexSpec
from cqrs_mongo.mongo.queries.keyset import check_keyset_rows, page_cursor
from cqrs_mongo.mongo.queries.query_compiler import CompiledQuery, compile_query
from cqrs_mongo.persistence.search_result import Page, SearchResult
from cqrs_mongo.specifications import QueryOptions
from cqrs_mongo.specifications.renaming import rename_options

DTO = TypeVar("DTO")

FACET_TOO_LARGE = frozenset({10334, 4031700, 146, 292})
"""Server codes refusing a ``$facet`` for its size: BSONObjectTooLarge (10334, and 4031700
"document constructed by $facet" since 4.4), ExceededMemoryLimit (146) and
QueryExceededMemoryLimitNoDiskUseAllowed (292)."""
ID = TypeVar("ID")


def _dto_type_from_bases(cls: type[Any]) -> type[Any] | None:
    for klass in cls.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            origin = typing.get_origin(base)
            if not (isinstance(origin, type) and issubclass(origin, MongoReadModel)):
                continue
            args = typing.get_args(base)
            if args and isinstance(args[0], type):
                return args[0]
    return None


class MongoReadModel(Generic[DTO]):
    """Shared behaviour of the read-side handlers, configured by subclassing.

    Attributes:
        dto_type: the read model class (a pydantic model, unless :meth:`to_dto` is overridden).
        collection: the collection holding the read models.
        indexes: indexes to create with :func:`ensure_indexes`.
        id_field: the DTO field stored as ``_id``.
    """

    dto_type: ClassVar[type[Any]]
    collection: ClassVar[str]
    indexes: ClassVar[Sequence[IndexSpec | IndexModel]] = ()
    id_field: ClassVar[str] = "id"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ``class Summaries(ProjectionPersistence[SummaryDTO, str])`` needs no ``dto_type``.
        if "dto_type" not in cls.__dict__:
            inferred = _dto_type_from_bases(cls)
            if inferred is not None:
                cls.dto_type = inferred

    def __init__(self) -> None:
        dto_type = getattr(type(self), "dto_type", None)
        if dto_type is None or not isinstance(getattr(type(self), "collection", None), str):
            raise ConfigurationError(
                f"{type(self).__qualname__} must set `dto_type` and `collection`."
            )
        self._mapper: DocumentMapper[Any] | None = (
            DocumentMapper(dto_type, self.id_field) if issubclass(dto_type, BaseModel) else None
        )
        self._renames = {} if self.id_field == "_id" else {self.id_field: "_id"}
        # A page is mapped in one pass unless a subclass builds its DTOs its own way.
        self._bulk_mapper = self._mapper if type(self).to_dto is MongoReadModel.to_dto else None

    def to_dto(self, document: dict[str, Any]) -> DTO:
        """The read model in ``document``: the stored fields, with the id under ``id_field``.

        Override to build DTOs another way (``return MyDTO(**document)``); the document has
        no ``_id`` and none of the package's own fields. The default validates it with the
        pydantic ``dto_type``.

        Raises:
            ConfigurationError: ``dto_type`` is not a pydantic model and this is not overridden.
        """
        if self._mapper is None:
            raise ConfigurationError(
                f"{type(self).__qualname__}: override to_dto for non-pydantic {self.dto_type!r}."
            )
        dto: DTO = self._mapper.from_document(document)
        return dto

    def from_stored(self, document: dict[str, Any]) -> DTO:
        """The read model in a stored ``document`` (as the driver returned it, with ``_id``).

        Renames ``_id`` to ``id_field`` (in place: the driver's own copy), then calls
        :meth:`to_dto`.
        """
        if "_id" in document and self.id_field != "_id":
            document[self.id_field] = document.pop("_id")
        return self.to_dto(document)

    def _to_dtos(self, documents: list[dict[str, Any]]) -> list[DTO]:
        if self._bulk_mapper is not None:
            return self._bulk_mapper.from_documents(documents)
        return [self.from_stored(document) for document in documents]

    def query_options(self, criteria: Any) -> QueryOptions:
        """``criteria`` as ``QueryOptions`` over stored field names (``id_field`` is ``_id``).

        Raises:
            InvalidSpecificationError: ``criteria`` is neither a specification nor options.
        """
        options = QueryOptions.coerce(criteria)
        return rename_options(options, self._renames) if self._renames else options

    # --- by ids ----------------------------------------------------------------------------

    async def fetch_by_ids(self, ids: Sequence[Any], uow: Any) -> list[DTO]:
        """The read models with ``ids``, in the order asked, skipping missing ones; one query.

        Duplicate ids are collapsed to their first occurrence.

        Raises:
            InvalidSpecificationError: ``ids`` is a single string rather than a sequence.
        """
        if isinstance(ids, str | bytes):
            raise InvalidSpecificationError(
                f"{type(self).__qualname__}.fetch expects a list of ids, got the string {ids!r}."
            )
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        cursor = self._collection(uow).find(
            {"_id": {"$in": wanted}},
            session=read_session(uow),
            limit=len(wanted),
            batch_size=len(wanted),
        )
        by_id = {document["_id"]: document for document in await driver.to_list(cursor)}
        return [self.from_stored(by_id[i]) for i in wanted if i in by_id]

    # --- by specification ------------------------------------------------------------------

    def search(self, criteria: Any, uow: Any) -> SearchResult[DTO]:
        """A lazy result of the read models matching a specification or ``QueryOptions``.

        Awaiting it runs one ``find``; ``count()`` runs ``count_documents`` over the
        specification (pagination ignored); ``first()`` asks for one row; ``stream(n)``
        iterates a server cursor ``n`` documents per batch, holding one batch at a time.

        Raises:
            InvalidSpecificationError: ``criteria`` cannot be compiled (raised here, before
                anything is sent).
        """
        options = self.query_options(criteria)
        compiled = compile_query(options)

        async def load() -> list[DTO]:
            cursor = self._find(compiled, uow)
            documents = await driver.to_list(cursor)
            check_keyset_rows(documents, options)
            return self._to_dtos(documents)

        async def stream(batch_size: int) -> AsyncIterator[DTO]:
            cursor = self._find(compiled, uow, batch_size=batch_size)
            try:
                async for document in cursor:
                    check_keyset_rows((document,), options)
                    yield self.from_stored(document)
            finally:
                await driver.close_cursor(cursor)

        async def count() -> int:
            total: int = await self._collection(uow).count_documents(
                _count_filter(compiled), session=read_session(uow)
            )
            return total

        async def first() -> DTO | None:
            limit = 1 if compiled.limit is None else min(compiled.limit, 1)
            cursor = self._find(compiled, uow, limit=limit)
            documents = await driver.to_list(cursor)
            check_keyset_rows(documents, options)
            return self.from_stored(documents[0]) if documents else None

        async def page() -> Page[DTO]:
            return await self._page(options, compiled, uow)

        return SearchResult(load, stream=stream, count=count, first=first, page=page)

    async def fetch_page(self, criteria: Any, uow: Any) -> Page[DTO]:
        """A page of read models and the total number of matches, in one round trip.

        Runs one ``aggregate`` with a ``$facet`` over the page and the count, or a ``find``
        and a ``count_documents`` when the server refuses the ``$facet`` for its size (a
        page of large documents) or inside a transaction. When the page is full,
        ``next_cursor`` is the keyset token of its last row.

        Raises:
            InvalidSpecificationError: ``criteria`` cannot be compiled.
        """
        options = self.query_options(criteria)
        return await self._page(options, compile_query(options), uow)

    async def _page(self, options: QueryOptions, compiled: CompiledQuery, uow: Any) -> Page[DTO]:
        """One ``$facet`` for items and total, or ``find`` + ``count`` where it cannot serve.

        A ``$facet`` returns one document, so the server refuses it when the page would pass
        16 MiB (or its stage passes 100 MB of memory, which it cannot spill): then the page
        falls back to a ``find`` and a ``count_documents``. Inside a transaction it does not
        try, since a refused command aborts the transaction.
        """
        session = read_session(uow)
        found: tuple[list[dict[str, Any]], int] | None = None
        if not getattr(session, "in_transaction", False):
            found = await self._facet_page(compiled, uow)
        if found is None:
            cursor = self._find(compiled, uow)
            documents = await driver.to_list(cursor)
            total: int = await self._collection(uow).count_documents(
                _count_filter(compiled), session=session
            )
        else:
            documents, total = found
        check_keyset_rows(documents, options)
        next_cursor = page_cursor(documents, options)  # before mapping, which may rename _id
        return Page(self._to_dtos(documents), total, next_cursor)

    async def _facet_page(
        self, compiled: CompiledQuery, uow: Any
    ) -> tuple[list[dict[str, Any]], int] | None:
        """``(items, total)`` from one ``$facet``, or ``None`` when the server refused its size."""
        try:
            cursor = await driver.aggregate(
                self._collection(uow),
                compiled.pipeline(with_total=True),
                session=read_session(uow),
            )
            rows = await driver.to_list(cursor)
        except OperationFailure as exc:
            if exc.code in FACET_TOO_LARGE:
                return None
            raise
        return CompiledQuery.unpack_facet(rows[0] if rows else None)

    def _find(self, compiled: CompiledQuery, uow: Any, **overrides: Any) -> Any:
        kwargs = {**compiled.find_kwargs(), **overrides}
        if kwargs.get("projection") is None:
            kwargs.pop("projection", None)
        return self._collection(uow).find(session=read_session(uow), **kwargs)

    def _collection(self, uow: Any) -> Any:
        return uow.database[self.collection]


class MongoQueryPersistence(MongoReadModel[DTO], Generic[DTO, ID]):
    """``IQueryPersistence``: read models by id (``register_query``).

    Example:
        >>> class OrderSummaries(MongoQueryPersistence[OrderSummaryDTO, str]):  # doctest: +SKIP
        ...     dto_type = OrderSummaryDTO
        ...     collection = "order_summaries"
    """

    async def fetch(self, ids: Sequence[ID], uow: Any) -> list[DTO]:
        """The read models with ``ids``, in the order asked, skipping missing ones; one query.

        Raises:
            InvalidSpecificationError: ``ids`` is a single string rather than a sequence.
        """
        return await self.fetch_by_ids(ids, uow)


class MongoSpecificationPersistence(MongoReadModel[DTO]):
    """``IQuerySpecificationPersistence``: read models by specification (``register_query_spec``).

    Also offers :meth:`fetch_page` (a page and its total in one round trip).
    """

    async def fetch(self, criteria: Any, uow: Any) -> SearchResult[DTO]:
        """A lazy result of the read models matching a specification or ``QueryOptions``.

        Raises:
            InvalidSpecificationError: ``criteria`` cannot be compiled.
        """
        return self.search(criteria, uow)


class MongoReadModelPersistence(MongoReadModel[DTO], Generic[DTO, ID]):
    """Both query ports in one class, for registering it with both ``register_query`` and
    ``register_query_spec``: ``fetch`` takes a list of ids or a specification/QueryOptions.
    """

    async def fetch(self, criteria: Any, uow: Any) -> Any:
        """A list of read models for a list of ids; a ``SearchResult`` for a specification.

        Raises:
            InvalidSpecificationError: ``criteria`` is a single string, or neither ids nor a
                specification.
        """
        if isinstance(criteria, str | bytes):
            return await self.fetch_by_ids(criteria, uow)
        if isinstance(criteria, list | tuple | Set):
            return await self.fetch_by_ids(list(criteria), uow)
        return self.search(criteria, uow)


def read_session(uow: Any) -> Any:
    """The session a read in ``uow`` passes: the unit's while active, else ``None``."""
    # A lazy result may be consumed after its unit of work closed; a read then runs in an
    # implicit session of its own (reads only: writes never leave their session).
    return uow.session if getattr(uow, "is_active", False) else None


def _count_filter(compiled: CompiledQuery) -> dict[str, Any]:
    return compiled.filter if compiled.count_filter is None else compiled.count_filter
