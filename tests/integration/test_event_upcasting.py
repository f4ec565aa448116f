"""Streams written by older code (schema v1, v2) load into today's v3 classes; docs unchanged."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import uuid4

import pytest

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import UnknownEventTypeError
from cqrs_mongo.eventsourcing import UpcasterChain
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory

pytestmark = pytest.mark.requires_transactions

upcasters = UpcasterChain()


@upcasters.register("AccountOpened", from_version=1)
def split_name(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 had one ``name``; v2 has ``first_name`` and ``last_name``."""
    first, _, last = payload.pop("name").partition(" ")
    return {**payload, "first_name": first, "last_name": last}


@upcasters.register("AccountOpened", from_version=2)
def add_credit_limit(payload: dict[str, Any]) -> dict[str, Any]:
    """v3 added a credit limit; accounts opened before had the old fixed limit."""
    return {**payload, "credit_limit": Decimal("500")}


class AccountOpened(DomainEvent):
    schema_version: ClassVar[int] = 3
    first_name: str
    last_name: str
    credit_limit: Decimal


class Deposited(DomainEvent):
    amount: Decimal


class Account(AggregateRoot[str]):
    holder: str = ""
    credit_limit: Decimal = Decimal("0")
    balance: Decimal = Decimal("0")

    def apply_AccountOpened(self, event: AccountOpened) -> None:
        self.holder = f"{event.last_name}, {event.first_name}"
        self.credit_limit = event.credit_limit

    def apply_Deposited(self, event: Deposited) -> None:
        self.balance += event.amount


class AccountRepository(EventSourcedRepository[Account, str]):
    upcasters = upcasters


def old_document(
    stream_id: str, version: int, event_type: str, schema: int, payload: dict[str, Any]
) -> dict[str, Any]:
    """An event document as an older release of the code wrote it."""
    return {
        "_id": uuid4(),
        "stream_id": stream_id,
        "stream_type": "Account",
        "version": version,
        "event_type": event_type,
        "schema_version": schema,
        "payload": payload,
        "metadata": {"correlation_id": None, "causation_id": None},
        "occurred_at": datetime(2020, 1, 1, tzinfo=UTC),
    }


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name)


async def test_v1_and_v2_events_load_into_v3_classes_and_stay_stored_as_written(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    written = [
        old_document("a-1", 1, "AccountOpened", 1, {"name": "Ada Lovelace"}),
        old_document("a-1", 2, "Deposited", 1, {"amount": Decimal("10.50")}),
        old_document("a-2", 1, "AccountOpened", 2, {"first_name": "Alan", "last_name": "Turing"}),
    ]
    await mongo_db["events"].insert_many(copy.deepcopy(written))

    async with factory(read_only=True) as uow:
        ada, alan = await AccountRepository().retrieve(["a-1", "a-2"], uow)

    assert (ada.holder, ada.credit_limit, ada.balance, ada.version) == (
        "Lovelace, Ada",
        Decimal("500"),
        Decimal("10.50"),
        2,
    )
    assert (alan.holder, alan.credit_limit, alan.version) == ("Turing, Alan", Decimal("500"), 1)
    stored = (
        await mongo_db["events"]
        .find({}, {"_id": 0})
        .sort([("stream_id", 1), ("version", 1)])
        .to_list(None)
    )
    assert stored == [{k: v for k, v in doc.items() if k != "_id"} for doc in written]


async def test_new_events_are_written_at_the_current_schema_version(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await mongo_db["events"].insert_one(
        old_document("a-1", 1, "AccountOpened", 1, {"name": "Ada L"})
    )
    async with factory() as uow:
        [account] = await AccountRepository().retrieve(["a-1"], uow)
        account.add_event(Deposited(amount=Decimal("1")))
        await AccountRepository().persist(account, uow)

    newest = await mongo_db["events"].find_one({"stream_id": "a-1", "version": 2})
    assert (newest["event_type"], newest["schema_version"]) == ("Deposited", 1)


async def test_an_unknown_event_type_in_a_stream_fails_the_load(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    await mongo_db["events"].insert_many(
        [
            old_document(
                "a-1",
                1,
                "AccountOpened",
                3,
                {"first_name": "A", "last_name": "B", "credit_limit": Decimal("1")},
            ),
            old_document("a-1", 2, "AccountFrozen", 1, {}),
        ]
    )

    async with factory(read_only=True) as uow:
        with pytest.raises(UnknownEventTypeError, match="'AccountFrozen'"):
            await AccountRepository().retrieve(["a-1"], uow)
