"""The Projection base and the in-memory runner users unit-test their projections with."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.errors import ConfigurationError, ProjectionError, ProjectionGapError
from cqrs_mongo.eventsourcing import InMemoryEventStore
from cqrs_mongo.projections import (
    InMemoryProjectionRunner,
    Projection,
    ProjectionContext,
    RetryPolicy,
    WorkerLifecycle,
    WorkerState,
)


class TicketOpened(DomainEvent):
    title: str
    price: Decimal


class TicketClosed(DomainEvent):
    event_type = "ticket.closed.v1"


class Ignored(DomainEvent):
    pass


class TicketBoard(Projection):
    name = "ticket_board"

    async def on_TicketOpened(self, event: TicketOpened, ctx: ProjectionContext) -> None:
        await ctx.set(ctx.stream_id, title=event.title, price=event.price, state="open")
        await ctx.inc("totals", opened=1)


class ClosingBoard(TicketBoard):
    async def on_TicketClosed(self, event: TicketClosed, ctx: ProjectionContext) -> None:
        raise RuntimeError("closing is broken")


async def opened(store: InMemoryEventStore, ticket: str, *titles: str) -> None:
    version = await store.stream_version(ticket)
    events = [TicketOpened(title=title, price=Decimal("1.10")) for title in titles]
    await store.append(ticket, events, version, stream_type="Ticket")


async def test_the_runner_folds_an_event_store_into_documents() -> None:
    store = InMemoryEventStore()
    await opened(store, "t.1", "first", "renamed")
    await opened(store, "t.2", "second")
    await store.append("t.2", [Ignored()], 1, stream_type="Ticket")
    runner = InMemoryProjectionRunner(TicketBoard())

    handled = await runner.apply_store(store)

    assert handled == 3
    assert runner.get("t.1") == {
        "_id": "t.1",
        "title": "renamed",
        "price": Decimal("1.10"),
        "state": "open",
    }
    assert runner.get("totals") == {"_id": "totals", "opened": 3}
    assert (runner.position("t.1"), runner.position("t.2")) == (2, 2)


async def test_applying_the_same_events_again_changes_nothing() -> None:
    store = InMemoryEventStore()
    await opened(store, "t.1", "a", "b")
    runner = InMemoryProjectionRunner(TicketBoard())
    await runner.apply_store(store)
    before = runner.documents()

    assert await runner.apply_store(store) == 0  # every event skipped before its handler
    assert await runner.apply(await store.read_stream("t.1", after_version=1)) == 0

    assert runner.documents() == before


async def test_a_failing_handler_names_the_event_and_writes_nothing() -> None:
    store = InMemoryEventStore()
    await opened(store, "t.9", "a")
    await store.append("t.9", [TicketClosed()], 1, stream_type="Ticket")
    runner = InMemoryProjectionRunner(ClosingBoard())

    with pytest.raises(
        ProjectionError, match=r"ticket.closed.v1 't.9'@2 failed: closing is broken"
    ):
        await runner.apply_store(store)
    assert runner.position("t.9") == 1
    assert runner.get("t.9") == {
        "_id": "t.9",
        "title": "a",
        "price": Decimal("1.10"),
        "state": "open",
    }


def test_handlers_are_found_by_stored_event_type() -> None:
    board = ClosingBoard()

    assert board.handled_event_types == {"TicketOpened", "ticket.closed.v1"}
    assert board.handler_for("Ignored") is None


def test_a_projection_needs_a_name() -> None:
    class Nameless(Projection):
        pass

    with pytest.raises(ConfigurationError, match="Nameless must set `name`"):
        Nameless()


def test_a_handler_without_a_findable_event_class_is_a_configuration_error() -> None:
    class Orphan(Projection):
        name = "orphans"

        async def on_NoSuchEvent(self, event: Any, ctx: ProjectionContext) -> None: ...

    with pytest.raises(ConfigurationError, match="on_NoSuchEvent: expected one DomainEvent class"):
        Orphan()


def test_the_lifecycle_refuses_illegal_moves() -> None:
    life = WorkerLifecycle("ticket_board")
    life.move_to(WorkerState.RUNNING)

    with pytest.raises(ProjectionError, match="'ticket_board': cannot go from running to stopped"):
        life.move_to(WorkerState.STOPPED)


def test_retry_delays_double_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0)

    assert [policy.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


class CountingBoard(TicketBoard):
    """Counts handler runs per (stream, version) and checks the state earlier events left."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[tuple[Any, int], int] = {}

    async def on_TicketOpened(self, event: TicketOpened, ctx: ProjectionContext) -> None:
        key = (ctx.stream_id, ctx.version)
        self.calls[key] = self.calls.get(key, 0) + 1
        seen = await ctx.get(ctx.stream_id)
        if ctx.version > 1 and (seen is None or seen["title"] == event.title):
            raise AssertionError(f"handler saw a state later than version {ctx.version - 1}")
        await super().on_TicketOpened(event, ctx)


async def test_replayed_events_never_reach_the_handler_again() -> None:
    store = InMemoryEventStore()
    await opened(store, "t.1", "a", "b", "c")
    board = CountingBoard()
    runner = InMemoryProjectionRunner(board)
    events = await store.read_stream("t.1")

    await runner.apply(events[:2])
    await runner.apply(events)  # overlaps what was applied
    await runner.apply_store(store)

    assert board.calls == {("t.1", 1): 1, ("t.1", 2): 1, ("t.1", 3): 1}


async def test_an_event_past_a_gap_is_refused_and_nothing_moves() -> None:
    store = InMemoryEventStore()
    await opened(store, "t.1", "a", "b", "c")
    runner = InMemoryProjectionRunner(TicketBoard())
    first, _, third = await store.read_stream("t.1")

    await runner.apply([first])
    with pytest.raises(ProjectionGapError, match=r"'t.1'@3 arrived with the stream at version 1"):
        await runner.apply([third])
    assert runner.position("t.1") == 1


async def test_after_commit_callbacks_get_the_changed_ids_and_a_failing_one_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryEventStore()
    await opened(store, "t.1", "a")
    await opened(store, "t.2", "b")
    seen: list[Any] = []

    async def broken(changes: Any) -> None:
        raise RuntimeError("cache down")

    runner = InMemoryProjectionRunner(TicketBoard(), after_commit=[broken])
    runner.add_after_commit(seen.append)

    await runner.apply_store(store)
    await runner.apply_store(store)  # nothing new: no call

    assert seen == [{"ticket_board": frozenset({"t.1", "t.2", "totals"})}]
    assert "after-commit callback failed" in caplog.text
    assert runner.position("t.2") == 1
