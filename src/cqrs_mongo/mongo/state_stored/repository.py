"""State-stored aggregates: one document per aggregate, written only at the expected version."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from pymongo import IndexModel

from cqrs_mongo.domain.events import DomainEvent
from cqrs_mongo.errors import ConfigurationError, NotFoundError
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.documents import DocumentMapper
from cqrs_mongo.mongo.indexes import IndexSpec
from cqrs_mongo.mongo.state_stored.versioned_write import write_versioned
from cqrs_mongo.persistence.unit_of_work import flush_held

T = TypeVar("T", bound=BaseModel)
ID = TypeVar("ID")


class MongoRepository(Generic[T, ID]):
    """Persists and loads aggregates of one type, configured by subclassing.

    A new aggregate (version 0) is inserted as version 1; an existing one is replaced only
    where ``{_id, version}`` still matches what was loaded, and its version moves on by one.
    Anyone else's write in between makes the filter miss, so a lost update is impossible.
    Every operation runs in ``uow.session``; the unit of work must be a Mongo one.

    Duplicate ids passed to :meth:`retrieve` are collapsed: each aggregate is returned once,
    at the position of its first occurrence, so a unit of work never holds two copies of one
    aggregate that would then race each other's version.

    Example:
        >>> class CustomerRepository(MongoRepository[Customer, str]):  # doctest: +SKIP
        ...     entity_type = Customer
        ...     collection = "customers"
        ...     indexes = [IndexSpec(keys=[("email", 1)], unique=True, name="email_unique")]

    Attributes:
        entity_type: the aggregate class (an ``AggregateRoot`` or any pydantic model with an
            id field and an integer ``version``).
        collection: the collection name.
        indexes: indexes to create with :func:`ensure_indexes`.
        id_field: the model field stored as ``_id``.
    """

    entity_type: ClassVar[type[Any]]
    collection: ClassVar[str]
    indexes: ClassVar[Sequence[IndexSpec | IndexModel]] = ()
    id_field: ClassVar[str] = "id"

    def __init__(self) -> None:
        entity_type = getattr(type(self), "entity_type", None)
        if entity_type is None or not isinstance(getattr(type(self), "collection", None), str):
            raise ConfigurationError(
                f"{type(self).__qualname__} must set `entity_type` and `collection`."
            )
        self.mapper: DocumentMapper[T] = DocumentMapper(entity_type, self.id_field)

    # --- writing ---------------------------------------------------------------------------

    async def persist(self, entity: T, uow: Any, events: Sequence[DomainEvent] | None = None) -> ID:
        """Insert or conditionally replace ``entity`` in ``uow``; returns its id.

        ``events`` is accepted for the port's sake; a state-stored aggregate keeps its state,
        not its events. After the write, ``entity.version`` is the stored version; it is put
        back if the transaction rolls back, and pending events are cleared on commit.

        Raises:
            ConcurrencyError: another writer changed (or created) the aggregate first.
            UnitOfWorkError: the unit is not active or is read-only.
        """
        document = self.mapper.to_document(entity)
        await write_versioned(
            uow, self.collection, entity, document, entity_name=self.entity_type.__name__
        )
        entity_id: ID = document["_id"]
        return entity_id

    # --- reading ---------------------------------------------------------------------------

    async def retrieve(self, ids: Sequence[ID], uow: Any) -> list[T]:
        """The aggregates with ``ids``, in the order asked, skipping missing ones; one query.

        Raises:
            TypeError: ``ids`` is a single string rather than a sequence of ids.
        """
        if isinstance(ids, str | bytes):
            raise TypeError(f"retrieve expects a sequence of ids, got the string {ids!r}.")
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return []
        await flush_held(uow)  # the read sees what the unit wrote before
        # limit == batch_size lets the server close the cursor with the first reply: one
        # round trip for any number of ids (within the 16 MiB reply limit).
        cursor = self._collection(uow).find(
            {"_id": {"$in": wanted}},
            session=uow.session,
            limit=len(wanted),
            batch_size=len(wanted),
        )
        by_id = {document["_id"]: document for document in await driver.to_list(cursor)}
        return [self.mapper.from_document(by_id[i]) for i in wanted if i in by_id]

    async def get(self, entity_id: ID, uow: Any) -> T:
        """The aggregate with ``entity_id``.

        Raises:
            NotFoundError: no aggregate has that id.
        """
        found = await self.retrieve([entity_id], uow)
        if not found:
            raise NotFoundError(self.entity_type.__name__, entity_id)
        return found[0]

    def _collection(self, uow: Any) -> Any:
        return uow.database[self.collection]
