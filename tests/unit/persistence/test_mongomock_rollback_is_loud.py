"""On mongomock (no transactions) a rolled-back unit's writes stay; that is said loudly with a
warning naming the alternative, never silently (issue 10.6)."""

from __future__ import annotations

import pytest

from cqrs_mongo import (
    AggregateRoot,
    DomainEvent,
    NonTransactionalRollbackWarning,
    PersistenceDispatcher,
    PersistenceRegistry,
)
from cqrs_mongo.mongo import EventSourcedRepository, MongoRepository, MongoUnitOfWorkFactory
from cqrs_mongo.mongo.driver import create_mongomock_client


class Note(AggregateRoot[str]):
    text: str = ""


class NoteRepository(MongoRepository[Note, str]):
    entity_type = Note
    collection = "notes"


def _setup() -> tuple[PersistenceDispatcher, MongoUnitOfWorkFactory]:
    registry = PersistenceRegistry()
    registry.register_operation(Note, NoteRepository)
    registry.register_retrieval(Note, NoteRepository)
    factory = MongoUnitOfWorkFactory(create_mongomock_client(), "notes")
    return PersistenceDispatcher({"default": factory}, registry), factory


async def test_rolling_back_a_unit_that_wrote_on_mongomock_warns_that_the_writes_stay() -> None:
    dispatcher, factory = _setup()
    with (  # noqa: PT031 - the warning is issued by the rollback the raise causes
        pytest.warns(NonTransactionalRollbackWarning, match=r"stay.*embedded server"),
        pytest.raises(ValueError, match="boom"),
    ):
        async with factory() as uow:
            await dispatcher.apply(Note(id="n-1", text="kept"), uow=uow)
            raise ValueError("boom")
    # The documented limit, not a silent one: the write is still there.
    [note] = await dispatcher.fetch_domain(Note, ["n-1"])
    assert note.text == "kept"


async def test_a_unit_that_did_not_write_rolls_back_quietly_on_mongomock() -> None:
    _, factory = _setup()
    with pytest.raises(ValueError, match="boom"):
        async with factory():
            raise ValueError("boom")


class Opened(DomainEvent):
    pass


class Account(AggregateRoot[str]):
    def apply_Opened(self, event: Opened) -> None:
        pass


class AccountRepository(EventSourcedRepository[Account, str]):
    pass


async def test_rolling_back_appended_events_on_mongomock_warns_too() -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Account, AccountRepository)
    factory = MongoUnitOfWorkFactory(create_mongomock_client(), "accounts")
    dispatcher = PersistenceDispatcher({"default": factory}, registry)
    account = Account(id="a-1")
    account.add_event(Opened())
    with (  # noqa: PT031 - the warning is issued by the rollback the raise causes
        pytest.warns(NonTransactionalRollbackWarning, match="stay"),
        pytest.raises(ValueError, match="boom"),
    ):
        async with factory() as uow:
            await dispatcher.apply(account, uow=uow)
            raise ValueError("boom")
