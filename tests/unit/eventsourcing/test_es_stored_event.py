"""The stored-event envelope: payloads at store precision, and what a unit clears on commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.eventsourcing import InMemoryEventSourcedRepository, StoredEvent, shared_event_store
from cqrs_mongo.persistence import InMemoryUnitOfWorkFactory

PLUS_TWO = timezone(timedelta(hours=2))


class Stop(BaseModel):
    name: str
    due: datetime


class RoutePlanned(DomainEvent):
    route: str
    fare: Decimal
    vehicle: UUID
    stops: list[Stop]
    legs: tuple[datetime, ...]
    notes: dict[str, Any]
    departs: datetime


class Renamed(DomainEvent):
    name: str

    def payload(self) -> dict[str, Any]:
        # A payload the event keeps and hands out as is: the store must not write into it.
        return _KEPT


_KEPT: dict[str, Any] = {"name": "kept", "at": datetime(2024, 5, 1, 12, 0, 0, 999999)}


def test_nested_datetimes_are_cut_to_utc_milliseconds_and_scalars_kept() -> None:
    vehicle = uuid4()
    event = RoutePlanned(
        route="r-7",
        fare=Decimal("2.50"),
        vehicle=vehicle,
        stops=[Stop(name="a", due=datetime(2024, 1, 1, 8, 0, 0, 123456))],
        legs=(datetime(2024, 1, 1, 9, 0, 0, 654321, tzinfo=PLUS_TWO),),
        notes={"checked": {"at": datetime(2024, 1, 1, 10, 0, 0, 1999)}, "count": 3},
        departs=datetime(2024, 1, 1, 7, 59, 59, 999999),
    )

    stored = StoredEvent.from_event(event, "r-7", "Route", 1)

    assert stored.payload == {
        "route": "r-7",
        "fare": Decimal("2.50"),
        "vehicle": vehicle,
        "stops": [{"name": "a", "due": datetime(2024, 1, 1, 8, 0, 0, 123000, tzinfo=UTC)}],
        "legs": [datetime(2024, 1, 1, 7, 0, 0, 654000, tzinfo=UTC)],
        "notes": {"checked": {"at": datetime(2024, 1, 1, 10, 0, 0, 1000, tzinfo=UTC)}, "count": 3},
        "departs": datetime(2024, 1, 1, 7, 59, 59, 999000, tzinfo=UTC),
    }
    assert stored.payload["departs"].tzinfo is UTC


def test_a_datetime_set_without_validation_is_still_cut() -> None:
    event = RoutePlanned.model_construct(
        route="r-1",
        fare=Decimal("1"),
        vehicle=uuid4(),
        stops=[],
        legs=(),
        notes={},
        departs=datetime(2024, 3, 1, 6, 0, 0, 500500, tzinfo=PLUS_TWO),
    )

    stored = StoredEvent.from_event(event, "r-1", "Route", 1)

    assert stored.payload["departs"] == datetime(2024, 3, 1, 4, 0, 0, 500000, tzinfo=UTC)
    assert stored.payload["departs"].tzinfo is UTC


def test_an_overridden_payload_is_copied_not_changed() -> None:
    stored = StoredEvent.from_event(Renamed(name="ignored"), "p-1", "Person", 1)

    assert stored.payload == {"name": "kept", "at": datetime(2024, 5, 1, 12, 0, 0, 999000, UTC)}
    assert _KEPT["at"] == datetime(2024, 5, 1, 12, 0, 0, 999999), "the override's dict changed"
    assert stored.payload is not _KEPT


class Ticked(DomainEvent):
    n: int


class Counter(AggregateRoot[str]):
    ticks: int = 0

    def apply_Ticked(self, event: Ticked) -> None:
        self.ticks += event.n


class CounterRepository(InMemoryEventSourcedRepository[Counter, str]):
    pass


async def test_an_event_added_after_the_write_stays_pending_after_commit() -> None:
    repository, factory = CounterRepository(), InMemoryUnitOfWorkFactory()
    counter = Counter(id="c-1")
    counter.add_event(Ticked(n=1))
    late = Ticked(n=2)

    async with factory() as uow:
        await repository.persist(counter, uow)
        counter.add_event(late)

    assert [e.event_id for e in counter.pending_events] == [late.event_id]
    assert counter.version == 1
    async with factory() as uow:
        await repository.persist(counter, uow)
    assert counter.pending_events == ()
    stored = await shared_event_store(factory).read_stream("c-1")
    assert [(e.version, e.payload) for e in stored] == [(1, {"n": 1}), (2, {"n": 2})]


def test_the_quick_envelope_is_the_same_frozen_stored_event() -> None:
    import dataclasses

    import pytest

    from cqrs_mongo.eventsourcing.stored_event import stored_event

    event = Renamed(name="x", correlation_id="corr", causation_id="cause")
    made = StoredEvent.from_event(event, "s-1", "Thing", 3)
    by_hand = StoredEvent(
        "s-1",
        "Thing",
        3,
        "Renamed",
        1,
        made.payload,
        event.event_id,
        event.occurred_at,
        "corr",
        "cause",
    )
    assert made == by_hand
    assert stored_event(*dataclasses.astuple(by_hand)) == by_hand
    assert stored_event("s", "T", 1, "E", 1, {}, event.event_id, event.occurred_at) == StoredEvent(
        "s", "T", 1, "E", 1, {}, event.event_id, event.occurred_at
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.version = 4  # type: ignore[misc]

    class Tagged(StoredEvent):  # a subclass keeps its own construction
        pass

    assert type(Tagged.from_event(event, "s-1", "Thing", 3)) is Tagged
