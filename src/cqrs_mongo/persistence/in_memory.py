"""In-memory adapters: a store, a unit of work with real rollback, and ready-made handlers.

They let users unit-test their command and query handlers with no database, with the same
semantics the Mongo adapters have: writes are conditional on the aggregate's version, a unit of
work that aborts leaves nothing behind, and specifications are evaluated with MongoDB's rules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from cqrs_mongo.errors import ConcurrencyError, InvalidSpecificationError
from cqrs_mongo.persistence import in_memory_keyset as keyset
from cqrs_mongo.persistence.hooks import Hooks
from cqrs_mongo.persistence.search_result import Page, SearchResult
from cqrs_mongo.persistence.unit_of_work import UnitOfWork, UnitOfWorkState, advance_version
from cqrs_mongo.specifications import QueryOptions, Specification

E = TypeVar("E", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)
ID = TypeVar("ID")
T = TypeVar("T")

Key = tuple[str, Any]


class InMemoryStore:
    """Collections of documents (plain dicts keyed by id), shared by units of work.

    It also holds the other in-memory stores its units' handlers share (the event store, the
    projection store), so that everything written through one unit-of-work factory is seen by
    every handler reading through it: see :meth:`shared`.
    """

    def __init__(self) -> None:
        self.collections: dict[str, dict[Any, dict[str, Any]]] = {}
        self.extensions: dict[str, Any] = {}

    def collection(self, name: str) -> dict[Any, dict[str, Any]]:
        """The committed documents of collection ``name`` (created empty on first use)."""
        return self.collections.setdefault(name, {})

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """The object kept under ``key``, made by ``make()`` on first use.

        Example:
            >>> store = InMemoryStore()
            >>> store.shared("events", list) is store.shared("events", list)
            True
        """
        found = self.extensions.get(key)
        if found is None:
            found = self.extensions[key] = make()
        return found

    def clear(self) -> None:
        """Drop every collection and every shared store."""
        self.collections.clear()
        self.extensions.clear()


_DELETED = object()


class InMemoryUnitOfWork(UnitOfWork):
    """A unit of work over an :class:`InMemoryStore` with real isolation and rollback.

    Writes go to a private overlay and reach the store only on commit. Commit re-checks that
    nothing this unit wrote was changed by another unit since this one first touched it, and
    raises :class:`ConcurrencyError` otherwise, as a transaction's write conflict would.
    """

    def __init__(
        self, store: InMemoryStore, source: str | None = None, hooks: Hooks | None = None
    ) -> None:
        super().__init__(source=source, hooks=hooks)
        self.store = store
        self._overlay: dict[Key, Any] = {}
        self._base_versions: dict[Key, Any] = {}

    async def _begin(self) -> None:
        self._overlay.clear()
        self._base_versions.clear()

    async def _commit(self) -> None:
        for (name, doc_id), base in self._base_versions.items():
            committed = self.store.collection(name).get(doc_id)
            now = None if committed is None else committed.get("version")
            if now != base:
                raise ConcurrencyError(name, doc_id, base, now, "write conflict at commit")
        for (name, doc_id), doc in self._overlay.items():
            documents = self.store.collection(name)
            if doc is _DELETED:
                documents.pop(doc_id, None)
            else:
                documents[doc_id] = doc

    async def _rollback(self) -> None:
        self._overlay.clear()
        self._base_versions.clear()

    def get(self, collection: str, doc_id: Any) -> dict[str, Any] | None:
        """The document as this unit sees it (its own writes first), or ``None``."""
        self._require(UnitOfWorkState.ACTIVE, "read")
        key = (collection, doc_id)
        if key in self._overlay:
            doc = self._overlay[key]
            return None if doc is _DELETED else copy.deepcopy(doc)
        committed = self.store.collection(collection).get(doc_id)
        return None if committed is None else copy.deepcopy(committed)

    def documents(self, collection: str) -> Iterator[dict[str, Any]]:
        """Every document of ``collection`` as this unit sees it."""
        self._require(UnitOfWorkState.ACTIVE, "read")
        seen = set()
        for doc_id, doc in list(self.store.collection(collection).items()):
            seen.add(doc_id)
            key = (collection, doc_id)
            current = self._overlay.get(key, doc)
            if current is not _DELETED:
                yield copy.deepcopy(current)
        for (name, doc_id), doc in list(self._overlay.items()):
            if name == collection and doc_id not in seen and doc is not _DELETED:
                yield copy.deepcopy(doc)

    def put(self, collection: str, doc_id: Any, document: dict[str, Any] | None) -> None:
        """Stage ``document`` (or a deletion, for ``None``) until commit."""
        self.record_write()
        key = (collection, doc_id)
        if key not in self._base_versions:
            committed = self.store.collection(collection).get(doc_id)
            self._base_versions[key] = None if committed is None else committed.get("version")
        self._overlay[key] = _DELETED if document is None else copy.deepcopy(document)


class InMemoryUnitOfWorkFactory:
    """Makes :class:`InMemoryUnitOfWork` units over one store; use as a ``uow_factories`` value."""

    def __init__(
        self,
        store: InMemoryStore | None = None,
        source: str | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.store = store if store is not None else InMemoryStore()
        self.source = source
        self.hooks = hooks

    @property
    def location(self) -> tuple[str, int]:
        """Where this factory's units write (its store), for the dispatcher's source check."""
        return ("memory", id(self.store))

    def __call__(self) -> InMemoryUnitOfWork:
        unit = InMemoryUnitOfWork(self.store, source=self.source, hooks=self.hooks)
        unit.factory = self
        return unit


class InMemoryRepository(Generic[E, ID]):
    """A state-stored repository (``IOperationPersistence`` + ``IRetrievalPersistence``).

    Subclass it and set ``entity_type`` (and optionally ``collection``)::

        class CustomerRepository(InMemoryRepository[Customer, str]):
            entity_type = Customer
    """

    entity_type: ClassVar[type[BaseModel]]
    collection: ClassVar[str] = ""

    @classmethod
    def collection_name(cls) -> str:
        """The collection this repository writes to."""
        return cls.collection or cls.entity_type.__name__

    async def persist(self, entity: E, uow: InMemoryUnitOfWork) -> ID:
        """Insert (version 0 -> 1) or update where the stored version still matches.

        Raises:
            ConcurrencyError: the stored version is not the entity's version.
        """
        name = self.collection_name()
        entity_id = entity.id  # type: ignore[attr-defined]
        expected: int = entity.version  # type: ignore[attr-defined]
        stored = uow.get(name, entity_id)
        actual = None if stored is None else stored.get("version")
        if (stored is None and expected != 0) or (stored is not None and actual != expected):
            raise ConcurrencyError(
                type(entity).__name__, entity_id, expected if expected else None, actual
            )
        document = entity.model_dump(mode="python")
        document["version"] = expected + 1
        uow.put(name, entity_id, document)
        advance_version(entity, expected + 1, uow)
        return entity_id  # type: ignore[no-any-return]

    async def retrieve(self, ids: Sequence[ID], uow: InMemoryUnitOfWork) -> list[E]:
        """The entities with these ids, in the order asked, skipping missing ones.

        A repeated id is returned once, at its first position (as the Mongo handlers do).
        """
        name = self.collection_name()
        found = (uow.get(name, entity_id) for entity_id in dict.fromkeys(ids))
        return [self.entity_type.model_validate(doc) for doc in found if doc is not None]  # type: ignore[misc]


class InMemoryQueryPersistence(Generic[R, ID]):
    """Read models by ids (``IQueryPersistence``) and by specification
    (``IQuerySpecificationPersistence``) over an in-memory collection.

    Subclass it and set ``dto_type`` and ``collection``; register the same class with both
    ``register_query`` and ``register_query_spec``. Rows are ordered as MongoDB orders them,
    ``id_field`` breaking ties; ``page()`` gives a ``next_cursor`` for ``with_cursor`` when
    the page is full (keyset pagination, as on MongoDB).
    """

    dto_type: ClassVar[type[BaseModel]]
    collection: ClassVar[str] = ""
    id_field: ClassVar[str] = "id"

    @classmethod
    def collection_name(cls) -> str:
        """The collection the read models live in."""
        return cls.collection or cls.dto_type.__name__

    async def save(self, dto: R, uow: InMemoryUnitOfWork) -> None:
        """Store (or replace) one read model; for projections and test set-up."""
        document = dto.model_dump(mode="python")
        uow.put(self.collection_name(), document[self.id_field], document)

    async def fetch(self, criteria: Any, uow: InMemoryUnitOfWork) -> Any:
        """Read models by a list of ids (a list) or by specification (a ``SearchResult``).

        Raises:
            InvalidSpecificationError: ``criteria`` is a single string, or a cursor token is
                malformed or was issued for another ordering.
        """
        if isinstance(criteria, (Specification, QueryOptions)):
            return self._search(QueryOptions.coerce(criteria), uow)
        if isinstance(criteria, (str, bytes)):
            raise InvalidSpecificationError(
                f"fetch takes a list of ids, not the single {type(criteria).__name__} "
                f"{criteria!r}; wrap it in a list."
            )
        name = self.collection_name()
        found = (uow.get(name, doc_id) for doc_id in dict.fromkeys(criteria))
        return [self.dto_type.model_validate(doc) for doc in found if doc is not None]

    def _search(self, options: QueryOptions, uow: InMemoryUnitOfWork) -> SearchResult[R]:
        ordering = keyset.effective_ordering(options.ordering, self.id_field)
        start = None if options.cursor is None else keyset.decode_token(options.cursor, ordering)

        def matching() -> list[Any]:
            spec = options.specification
            docs = [
                d
                for d in uow.documents(self.collection_name())
                if spec is None or spec.is_satisfied_by(d)
            ]
            return keyset.ordered(docs, ordering)

        def window(docs: list[Any], limit: int | None) -> list[Any]:
            if start is None:
                begin = options.offset
                return docs[begin : None if limit is None else begin + limit]
            # Every match is at hand: refuse arrays on sort paths before paging at all.
            for doc in docs:
                keyset.sort_values(doc, ordering)
            return keyset.after(docs, ordering, start)[:limit]

        async def load() -> list[R]:
            return [self._to_dto(d, options) for d in window(matching(), options.limit)]

        async def count() -> int:
            return len(matching())

        async def first() -> R | None:
            limit = 1 if options.limit is None else min(1, options.limit)
            found = window(matching(), limit)
            return self._to_dto(found[0], options) if found else None

        async def page() -> Page[R]:
            docs = matching()
            items = window(docs, options.limit)
            next_cursor = None
            if items and options.limit is not None and len(items) == options.limit:
                for doc in docs:
                    keyset.sort_values(doc, ordering)
                next_cursor = keyset.encode_token(keyset.sort_values(items[-1], ordering), ordering)
            return Page([self._to_dto(d, options) for d in items], len(docs), next_cursor)

        return SearchResult(load, count=count, first=first, page=page)

    def _to_dto(self, document: dict[str, Any], options: QueryOptions) -> R:
        if options.fields:
            kept = {f: document[f] for f in options.fields if f in document}
            return self.dto_type.model_construct(**kept)  # type: ignore[return-value]
        return self.dto_type.model_validate(document)  # type: ignore[return-value]
