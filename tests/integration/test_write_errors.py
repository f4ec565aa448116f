"""Values that cannot be stored, stored events that cannot be read: clear errors, nothing lost."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import pytest

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import (
    DocumentEncodingError,
    DocumentTooLargeError,
    EventDecodingError,
    UnitOfWorkError,
)
from cqrs_mongo.mongo import MongoRepository
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory
from cqrs_mongo.persistence import PersistenceDispatcher, PersistenceRegistry

pytestmark = pytest.mark.requires_transactions


class Noted(DomainEvent):
    value: Any = None


class Note(AggregateRoot[Any]):
    notes: int = 0

    def apply_Noted(self, event: Noted) -> None:
        self.notes += 1


class NoteRepository(EventSourcedRepository[Note, Any]):
    pass


class Counter(AggregateRoot[Any]):
    value: int = 0


class CounterRepository(MongoRepository[Counter, Any]):
    entity_type = Counter
    collection = "counters"


class Opaque:
    pass


class StrictNoted(DomainEvent):
    value: int


class Strict(AggregateRoot[str]):
    def apply_StrictNoted(self, event: StrictNoted) -> None:
        pass


class StrictRepository(EventSourcedRepository[Strict, str]):
    pass


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name)


@pytest.fixture
def dispatcher(factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Note, NoteRepository, source="default")
    registry.register_retrieval(Note, NoteRepository, source="default")
    registry.register_operation(Counter, CounterRepository, source="default")
    registry.register_retrieval(Counter, CounterRepository, source="default")
    return PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)


async def write_notes(dispatcher: PersistenceDispatcher, note_id: str, count: int) -> Note:
    note = Note.blank(note_id)
    for n in range(count):
        note.add_event(Noted(value=n))
    await dispatcher.apply(note)
    return note


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"a", "b"}, "set"),
        (date(2024, 1, 1), "date"),
        (time(12, 30), "time"),
        (timedelta(seconds=5), "timedelta"),
        (Opaque(), "Opaque"),
        (2**63, "64 bits"),
        ({"deep": [1, {"deeper": -(2**64)}]}, "64 bits"),
    ],
)
async def test_an_unencodable_payload_is_named_before_anything_is_written(
    dispatcher: PersistenceDispatcher, mongo_db: Any, value: Any, kind: str
) -> None:
    await write_notes(dispatcher, "n-1", 1)
    [note] = await dispatcher.fetch_domain(Note, ["n-1"])
    note.add_event(Noted(value=value))
    with pytest.raises(DocumentEncodingError) as caught:
        await dispatcher.apply(note)
    error = caught.value
    assert (error.entity_type, error.entity_id, error.version) == ("Note", "n-1", 2)
    assert error.field is not None
    assert error.field.startswith("payload.value")
    assert kind in error.reason
    assert "'n-1'" in str(error)
    assert "version 2" in str(error)
    assert note.version == 1
    assert await mongo_db["events"].count_documents({"stream_id": "n-1"}) == 1
    [reloaded] = await dispatcher.fetch_domain(Note, ["n-1"])
    assert reloaded.version == 1


async def test_an_event_over_16_mib_is_refused_as_too_large(
    dispatcher: PersistenceDispatcher, mongo_db: Any
) -> None:
    note = Note.blank("big")
    note.add_event(Noted(value=b"x" * (17 * 1024 * 1024)))
    with pytest.raises(DocumentTooLargeError) as caught:
        await dispatcher.apply(note)
    assert (caught.value.entity_id, caught.value.version) == ("big", 1)
    assert await mongo_db["events"].count_documents({}) == 0


@pytest.mark.parametrize("bad_id", [{"tenant": 1}, [1, 2]])
async def test_a_document_or_array_id_is_refused_before_it_is_stored(
    dispatcher: PersistenceDispatcher, mongo_db: Any, bad_id: Any
) -> None:
    note = Note.blank(bad_id)
    note.add_event(Noted(value=1))
    with pytest.raises(DocumentEncodingError) as caught:
        await dispatcher.apply(note)
    assert caught.value.field == "id"
    with pytest.raises(DocumentEncodingError):
        await dispatcher.apply(Counter(id=bad_id))
    assert await mongo_db["events"].count_documents({}) == 0
    assert await mongo_db["counters"].count_documents({}) == 0
    with pytest.raises(DocumentEncodingError):
        await dispatcher.fetch_domain(Note, [bad_id])


@pytest.mark.parametrize(
    ("corruption", "field"),
    [
        ({"$unset": {"occurred_at": ""}}, "occurred_at"),
        ({"$unset": {"stream_type": ""}}, "stream_type"),
        ({"$unset": {"event_type": ""}}, "event_type"),
        ({"$set": {"payload": "not a document"}}, "payload"),
        ({"$set": {"payload": [1, 2]}}, "payload"),
        ({"$set": {"occurred_at": "yesterday"}}, "occurred_at"),
        ({"$set": {"payload.value": "not an int"}}, "payload.value"),
    ],
)
async def test_a_corrupted_stored_event_is_a_decoding_error_naming_stream_version_and_field(
    dispatcher: PersistenceDispatcher, mongo_db: Any, corruption: dict[str, Any], field: str
) -> None:
    strict = Strict.blank("s-1")
    strict.add_event(StrictNoted(value=1))
    strict.add_event(StrictNoted(value=2))
    factory = dispatcher._uow_factories["default"]
    async with factory() as uow:
        await StrictRepository().persist(strict, uow)
    await mongo_db["events"].update_one({"stream_id": "s-1", "version": 2}, corruption)
    with pytest.raises(EventDecodingError) as caught:
        async with factory(read_only=True) as uow:
            await StrictRepository().retrieve(["s-1"], uow)
    error = caught.value
    assert (error.stream_id, error.version, error.field) == ("s-1", 2, field)
    assert "'s-1'" in str(error)
    assert "version 2" in str(error)
    assert field in str(error)


async def test_a_stored_event_without_a_version_is_an_error_never_skipped(
    dispatcher: PersistenceDispatcher, mongo_db: Any
) -> None:
    await write_notes(dispatcher, "n-1", 2)
    await mongo_db["events"].update_one(
        {"stream_id": "n-1", "version": 2}, {"$unset": {"version": ""}}
    )
    with pytest.raises(EventDecodingError) as caught:
        await dispatcher.fetch_domain(Note, ["n-1"])
    assert (caught.value.stream_id, caught.value.version, caught.value.field) == (
        "n-1",
        None,
        "version",
    )


async def test_a_gap_in_a_stream_is_an_error(
    dispatcher: PersistenceDispatcher, mongo_db: Any
) -> None:
    await write_notes(dispatcher, "n-1", 3)
    await mongo_db["events"].update_one(
        {"stream_id": "n-1", "version": 2}, {"$set": {"version": "2"}}
    )
    with pytest.raises(EventDecodingError) as caught:
        await dispatcher.fetch_domain(Note, ["n-1"])
    assert caught.value.field == "version"


async def test_fetch_domain_refuses_a_closed_unit_of_work(
    dispatcher: PersistenceDispatcher, factory: MongoUnitOfWorkFactory
) -> None:
    await write_notes(dispatcher, "n-1", 1)
    async with factory() as uow:
        pass
    with pytest.raises(UnitOfWorkError):
        await dispatcher.fetch_domain(Note, ["n-1"], uow=uow)
    with pytest.raises(UnitOfWorkError):
        await dispatcher.fetch_domain(Counter, ["c"], uow=uow)


class Bag(AggregateRoot[str]):
    content: Any = None


class BagRepository(MongoRepository[Bag, str]):
    entity_type = Bag
    collection = "bags"


@pytest.mark.parametrize(
    ("content", "field"),
    [({"tags": {"a"}}, "content.tags"), ([1, 2**64], "content.1"), (time(1), "content")],
)
async def test_an_unencodable_state_stored_aggregate_is_named_and_not_written(
    factory: MongoUnitOfWorkFactory, mongo_db: Any, content: Any, field: str
) -> None:
    async with factory() as uow:
        await BagRepository().persist(Bag(id="b-1"), uow)
    [bag] = await _load_bag(factory)
    bag.content = content
    with pytest.raises(DocumentEncodingError) as caught:
        async with factory() as uow:
            await BagRepository().persist(bag, uow)
    assert (caught.value.entity_type, caught.value.entity_id, caught.value.version) == (
        "Bag",
        "b-1",
        2,
    )
    assert caught.value.field == field
    assert bag.version == 1
    [stored] = await mongo_db["bags"].find({}).to_list(None)
    assert (stored["version"], stored["content"]) == (1, None)


async def test_a_state_stored_aggregate_over_16_mib_is_refused_as_too_large(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    with pytest.raises(DocumentTooLargeError) as caught:
        async with factory() as uow:
            await BagRepository().persist(Bag(id="huge", content=b"x" * (17 * 1024 * 1024)), uow)
    assert caught.value.entity_id == "huge"
    assert await mongo_db["bags"].count_documents({}) == 0


async def _load_bag(factory: MongoUnitOfWorkFactory) -> list[Bag]:
    async with factory(read_only=True) as uow:
        return await BagRepository().retrieve(["b-1"], uow)
