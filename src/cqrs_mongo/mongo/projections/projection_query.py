"""Query-side handlers over projection collections: follow the rebuild alias, hide bookkeeping.

They are the read-side handlers of :mod:`cqrs_mongo.mongo.queries.query_persistence` (same
specifications, ordering, offset and keyset pagination, counts and ``stream()``) with two
differences: each query first looks up which collection the projection currently lives in
(``projection_aliases``, switched by a rebuild in one write), and the projection store's
bookkeeping fields (``_applied``, ``_applied_count``) are left out of what is read, so DTOs
never see them.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar, TypeVar

from cqrs_mongo.mongo.projections.projection_store import DEFAULT_ALIASES, EXCLUDE_BOOKKEEPING
from cqrs_mongo.mongo.queries.query_compiler import CompiledQuery, compile_query
from cqrs_mongo.mongo.queries.query_persistence import (
    MongoQueryPersistence,
    MongoReadModel,
    MongoReadModelPersistence,
    MongoSpecificationPersistence,
    read_session,
)
from cqrs_mongo.persistence.search_result import Page, SearchResult
from cqrs_mongo.projections import BOOKKEEPING_FIELDS
from cqrs_mongo.specifications import QueryOptions

DTO = TypeVar("DTO")
ID = TypeVar("ID")


class ProjectionReadModel(MongoReadModel[DTO]):
    """Shared behaviour of the read-side handlers over a projection.

    Attributes:
        collection: the projection's name (its collection until a rebuild moves it).
        aliases_collection: where rebuilds record the projection's current collection.
    """

    aliases_collection: ClassVar[str] = DEFAULT_ALIASES

    def __init__(self) -> None:
        super().__init__()
        self._resolved: str | None = None

    def from_stored(self, document: dict[str, Any]) -> DTO:
        """The read model in a stored ``document``, after removing the bookkeeping fields."""
        for name in BOOKKEEPING_FIELDS:
            document.pop(name, None)
        return super().from_stored(document)

    def _to_dtos(self, documents: list[dict[str, Any]]) -> list[DTO]:
        for document in documents:
            for name in BOOKKEEPING_FIELDS:
                document.pop(name, None)
        return super()._to_dtos(documents)

    async def current_collection(self, uow: Any) -> str:
        """The collection the projection's readers use now (its name unless rebuilt)."""
        alias = await uow.database[self.aliases_collection].find_one(
            {"_id": self.collection}, {"collection": 1}, session=read_session(uow)
        )
        return self.collection if alias is None else str(alias["collection"])

    async def fetch_by_ids(self, ids: Sequence[Any], uow: Any) -> list[DTO]:
        """The read models with ``ids``, in the order asked, skipping missing ones.

        Raises:
            InvalidSpecificationError: ``ids`` is a single string rather than a sequence.
        """
        if self._resolved is not None:
            return await super().fetch_by_ids(ids, uow)
        pinned = await self._pinned(uow)
        return await pinned.fetch_by_ids(ids, uow)

    def search(self, criteria: Any, uow: Any) -> SearchResult[DTO]:
        """A lazy result of the read models matching a specification or ``QueryOptions``.

        The alias is looked up when the result runs, not when it is built.

        Raises:
            InvalidSpecificationError: ``criteria`` cannot be compiled (raised here, before
                anything is sent).
        """
        if self._resolved is not None:
            return super().search(criteria, uow)
        compile_query(QueryOptions.coerce(criteria))  # fail now on a bad specification

        async def inner() -> SearchResult[DTO]:
            return (await self._pinned(uow)).search(criteria, uow)

        async def load() -> list[DTO]:
            return await (await inner())

        async def stream(batch_size: int) -> AsyncIterator[DTO]:
            async for item in (await inner()).stream(batch_size):
                yield item

        async def count() -> int:
            return await (await inner()).count()

        async def first() -> DTO | None:
            return await (await inner()).first()

        async def page() -> Page[DTO]:
            return await (await inner()).page()

        return SearchResult(load, stream=stream, count=count, first=first, page=page)

    async def fetch_page(self, criteria: Any, uow: Any) -> Page[DTO]:
        """A page of read models and the total number of matches, in one round trip.

        Raises:
            InvalidSpecificationError: ``criteria`` cannot be compiled.
        """
        if self._resolved is not None:
            return await super().fetch_page(criteria, uow)
        return await (await self._pinned(uow)).fetch_page(criteria, uow)

    async def _pinned(self, uow: Any) -> ProjectionReadModel[DTO]:
        pinned = copy.copy(self)
        pinned._resolved = await self.current_collection(uow)
        return pinned

    def _collection(self, uow: Any) -> Any:
        return uow.database[self._resolved or self.collection]

    def _find(self, compiled: CompiledQuery, uow: Any, **overrides: Any) -> Any:
        if compiled.projection is None and "projection" not in overrides:
            overrides["projection"] = EXCLUDE_BOOKKEEPING
        return super()._find(compiled, uow, **overrides)


class ProjectionQueryPersistence(ProjectionReadModel[DTO], MongoQueryPersistence[DTO, ID]):
    """``IQueryPersistence`` over a projection: read models by id (``register_query``).

    Example:
        >>> class OrderSummaryQuery(ProjectionQueryPersistence[OrderSummaryDTO, str]):
        ...     dto_type = OrderSummaryDTO  # doctest: +SKIP
        ...     collection = "order_summaries"
    """


class ProjectionSpecificationPersistence(
    ProjectionReadModel[DTO], MongoSpecificationPersistence[DTO]
):
    """``IQuerySpecificationPersistence`` over a projection (``register_query_spec``)."""


class ProjectionPersistence(ProjectionReadModel[DTO], MongoReadModelPersistence[DTO, ID]):
    """Both query ports over a projection in one class: ``fetch`` takes a list of ids, or a
    specification or ``QueryOptions``; register it with ``register_query`` and
    ``register_query_spec``.
    """
