"""Messages that say what to do (issue 10.7): a builder passed without ``.build()``, a stored
event whose ``apply_`` method was removed, the no-transactions warning."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel

from cqrs_mongo import (
    AggregateRoot,
    DomainEvent,
    InMemoryQueryPersistence,
    InMemoryUnitOfWorkFactory,
    InvalidSpecificationError,
    MissingEventHandlerError,
    PersistenceDispatcher,
    PersistenceRegistry,
    SpecificationBuilder,
)
from cqrs_mongo.eventsourcing import InMemoryEventSourcedRepository, InMemoryEventStore
from cqrs_mongo.mongo import MongoUnitOfWorkFactory
from cqrs_mongo.mongo.driver import create_mongomock_client


class Row(BaseModel):
    id: str
    n: int = 0


class RowQuery(InMemoryQueryPersistence[Row, str]):
    dto_type = Row


async def test_a_builder_passed_without_build_says_call_build() -> None:
    registry = PersistenceRegistry()
    registry.register_query(Row, RowQuery)
    registry.register_query_spec(Row, RowQuery)
    dispatcher = PersistenceDispatcher({"default": InMemoryUnitOfWorkFactory()}, registry)
    builder = SpecificationBuilder().where("n", ">", 1)
    with pytest.raises(InvalidSpecificationError, match=r"call \.build\(\)"):
        await dispatcher.fetch(Row, builder)
    with pytest.raises(InvalidSpecificationError, match=r"call \.build\(\)"):
        await dispatcher.fetch_domain(Row, builder)  # type: ignore[arg-type]


class Opened(DomainEvent):
    owner: str


class Closed(DomainEvent):
    pass


class Account(AggregateRoot[str]):
    owner: str = ""
    closed: bool = False

    def apply_Opened(self, event: Opened) -> None:
        self.owner = event.owner

    def apply_Closed(self, event: Closed) -> None:
        self.closed = True


class AccountWithoutClose(AggregateRoot[str]):
    """The same stream read by a later version of the code that dropped apply_Closed."""

    owner: str = ""

    def apply_Opened(self, event: Opened) -> None:
        self.owner = event.owner


class Accounts(InMemoryEventSourcedRepository[Account, str]):
    stream_type = "Account"


class AccountsWithoutClose(InMemoryEventSourcedRepository[AccountWithoutClose, str]):
    stream_type = "Account"


async def test_a_stored_event_whose_apply_method_was_removed_names_the_method() -> None:
    events = InMemoryEventStore()
    account = Account(id="a-1")
    account.add_event(Opened(owner="ada"))
    account.add_event(Closed())
    await Accounts(event_store=events).persist(account, None)
    with pytest.raises(MissingEventHandlerError, match="apply_Closed"):
        await AccountsWithoutClose(event_store=events).retrieve(["a-1"], None)


async def test_the_no_transactions_warning_names_require_transactions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "cqrs_mongo")
    factory = MongoUnitOfWorkFactory(create_mongomock_client(), "warn")
    async with factory():
        pass
    [message] = [r.getMessage() for r in caplog.records if "transactions" in r.getMessage()]
    assert "require_transactions=True" in message
