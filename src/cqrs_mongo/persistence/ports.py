"""The four persistence ports, as protocols users implement.

Command side: :class:`IOperationPersistence` (write an aggregate) and
:class:`IRetrievalPersistence` (load aggregates by id). Query side: :class:`IQueryPersistence`
(read models by id) and :class:`IQuerySpecificationPersistence` (read models by specification).
Every method receives the unit of work it must run in; a Mongo handler passes
``session=uow.session`` to every operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from cqrs_mongo.persistence.search_result import SearchResult
from cqrs_mongo.persistence.unit_of_work import UnitOfWork

T_Entity_co = TypeVar("T_Entity_co", covariant=True)
T_Entity_contra = TypeVar("T_Entity_contra", contravariant=True)
T_Result_co = TypeVar("T_Result_co", covariant=True)
T_ID_co = TypeVar("T_ID_co", covariant=True)
T_ID_contra = TypeVar("T_ID_contra", contravariant=True)


@runtime_checkable
class IOperationPersistence(Protocol[T_Entity_contra, T_ID_co]):
    """Writes an aggregate (its state, or its new events) inside a unit of work.

    Implementations may also accept ``events=`` (the dispatcher passes it only when the caller
    of ``apply`` gave events explicitly).
    """

    async def persist(self, entity: T_Entity_contra, uow: Any) -> T_ID_co:
        """Write ``entity`` in ``uow`` and return its id."""
        ...


@runtime_checkable
class IRetrievalPersistence(Protocol[T_Entity_co, T_ID_contra]):
    """Loads aggregates by id, for the command side."""

    async def retrieve(self, ids: Sequence[T_ID_contra], uow: Any) -> Sequence[T_Entity_co]:
        """The aggregates with these ids, in the order asked, skipping missing ones."""
        ...


@runtime_checkable
class IQueryPersistence(Protocol[T_Result_co, T_ID_contra]):
    """Loads read models (DTOs) by id, for the query side."""

    async def fetch(self, ids: Sequence[T_ID_contra], uow: Any) -> Sequence[T_Result_co]:
        """The read models with these ids, in the order asked, skipping missing ones."""
        ...


@runtime_checkable
class IQuerySpecificationPersistence(Protocol[T_Result_co]):
    """Loads read models matching a specification or ``QueryOptions``."""

    async def fetch(self, criteria: Any, uow: Any) -> SearchResult[T_Result_co]:
        """A lazy result of the read models matching ``criteria``."""
        ...


__all__ = [
    "IOperationPersistence",
    "IQueryPersistence",
    "IQuerySpecificationPersistence",
    "IRetrievalPersistence",
    "UnitOfWork",
]
