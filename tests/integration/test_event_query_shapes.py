"""The filters an event-sourced load sends: equality for one stream, index bounds on the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pymongo import monitoring

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.eventsourcing import EveryNEvents
from cqrs_mongo.mongo.driver import create_client
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory

pytestmark = pytest.mark.requires_transactions


class Ticked(DomainEvent):
    n: int


class Clock(AggregateRoot[str]):
    ticks: int = 0

    def apply_Ticked(self, event: Ticked) -> None:
        self.ticks += 1


class ClockRepository(EventSourcedRepository[Clock, str]):
    snapshot_strategy = EveryNEvents(10)


class ReplayingClockRepository(EventSourcedRepository[Clock, str]):
    pass


class Finds(monitoring.CommandListener):
    def __init__(self) -> None:
        self.filters: list[dict[str, Any]] = []
        self.options: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "events":
            self.filters.append(dict(event.command["filter"]))
            self.options.append(
                {k: event.command[k] for k in ("sort", "hint") if k in event.command}
            )

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest_asyncio.fixture
async def watched(mongo_server: Any, mongo_db: Any) -> AsyncIterator[tuple[Any, Finds]]:
    finds = Finds()
    client = create_client(mongo_server.uri, event_listeners=[finds])
    try:
        yield client, finds
    finally:
        await client.close()


async def test_one_stream_is_loaded_with_the_plain_equality_form(
    watched: tuple[Any, Finds], mongo_db: Any
) -> None:
    client, finds = watched
    factory = MongoUnitOfWorkFactory(client, mongo_db.name)
    clock = Clock.blank("c-1")
    for n in range(13):
        clock.add_event(Ticked(n=n))
    async with factory() as uow:
        await ClockRepository().persist(clock, uow)
    async with factory(read_only=True) as uow:
        [loaded] = await ClockRepository().retrieve(["c-1"], uow)
        [replayed] = await ReplayingClockRepository().retrieve(["c-1"], uow)
    assert (loaded.version, loaded.ticks) == (13, 13)
    assert (replayed.version, replayed.ticks) == (13, 13)
    assert finds.filters == [
        {"stream_id": "c-1", "version": {"$gt": 13}},  # the snapshot is at 13
        {"stream_id": "c-1"},  # no snapshot: the whole stream, nothing skipped
    ]


async def test_the_single_stream_shapes_are_index_scans_on_the_server(mongo_db: Any) -> None:
    from cqrs_mongo.mongo.eventsourcing.event_store import STREAM_VERSION_INDEX, streams_filter

    await mongo_db["events"].create_indexes([STREAM_VERSION_INDEX])
    await mongo_db["events"].insert_many(
        [{"stream_id": f"s{s}", "version": v} for s in range(5) for v in range(1, 51)]
    )
    for after, examined in ((0, 50), (40, 10)):
        explained = await mongo_db.command(
            {
                "explain": {
                    "find": "events",
                    "filter": streams_filter({"s2": after}),
                    "sort": {"version": 1},
                },
                "verbosity": "executionStats",
            }
        )
        assert "COLLSCAN" not in str(explained["queryPlanner"]["winningPlan"])
        assert explained["executionStats"]["totalKeysExamined"] == examined


async def test_a_load_of_many_streams_is_an_index_scan_on_the_server(
    watched: tuple[Any, Finds], mongo_db: Any
) -> None:
    # Streams with snapshots at different versions make an $or of index ranges, which the
    # embedded server scans the whole collection for unless the index is named.
    client, finds = watched
    factory = MongoUnitOfWorkFactory(client, mongo_db.name)
    for name, ticks in (("m-1", 13), ("m-2", 25), ("m-3", 4)):
        clock = Clock.blank(name)
        for n in range(ticks):
            clock.add_event(Ticked(n=n))
        async with factory() as uow:
            await ClockRepository().persist(clock, uow)
    async with factory(read_only=True) as uow:
        loaded = await ClockRepository().retrieve(["m-1", "m-2", "m-3"], uow)
    assert [(c.id, c.ticks) for c in loaded] == [("m-1", 13), ("m-2", 25), ("m-3", 4)]
    [query] = finds.filters[-1:]
    assert "$or" in query
    assert finds.options[-1]["hint"] == {"stream_id": 1, "version": 1}

    explained = await mongo_db.command(
        {
            "explain": {"find": "events", "filter": query, **finds.options[-1]},
            "verbosity": "executionStats",
        }
    )
    assert "COLLSCAN" not in str(explained["queryPlanner"]["winningPlan"])
    # Only the events after each snapshot: none of m-1 (13) and m-2 (25), all 4 of m-3.
    assert explained["executionStats"]["totalKeysExamined"] == 4


async def test_a_plain_in_of_streams_is_sent_without_a_hint(
    watched: tuple[Any, Finds], mongo_db: Any
) -> None:
    # The embedded server seeks the index for an $in by itself, and its hinted path is
    # several times slower per key: only an $or of ranges is hinted.
    client, finds = watched
    factory = MongoUnitOfWorkFactory(client, mongo_db.name)
    for name in ("p-1", "p-2"):
        clock = Clock.blank(name)
        clock.add_event(Ticked(n=0))
        async with factory() as uow:
            await ReplayingClockRepository().persist(clock, uow)
    async with factory(read_only=True) as uow:
        await ReplayingClockRepository().retrieve(["p-1", "p-2"], uow)
    assert finds.filters[-1] == {"stream_id": {"$in": ["p-1", "p-2"]}}
    assert "hint" not in finds.options[-1]
