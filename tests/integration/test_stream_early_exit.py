"""Leaving ``stream()`` early closes the server cursor and the unit of work at once, quietly."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from pydantic import BaseModel
from pymongo import monitoring

from cqrs_mongo import (
    PersistenceDispatcher,
    PersistenceRegistry,
    QueryOptions,
    SpecificationBuilder,
    UnitOfWorkState,
    current_unit_of_work,
)
from cqrs_mongo.mongo import MongoReadModelPersistence, MongoUnitOfWorkFactory
from cqrs_mongo.mongo.driver import create_client


class Row(BaseModel):
    id: str
    n: int


class Rows(MongoReadModelPersistence[Row, str]):
    dto_type = Row
    collection = "rows"


class Commands(monitoring.CommandListener):
    """Every command the client sends, killCursors included (CommandCounter skips it)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None


@pytest_asyncio.fixture
async def client_and_commands(mongo_server: Any) -> AsyncIterator[tuple[Any, Commands]]:
    commands = Commands()
    client = create_client(mongo_server.uri, event_listeners=[commands])
    try:
        yield client, commands
    finally:
        await client.close()


class RecordingFactory:
    """Makes the dispatcher's units and remembers them, to check they were closed."""

    def __init__(self, inner: MongoUnitOfWorkFactory) -> None:
        self.inner = inner
        self.units: list[Any] = []

    def __call__(self) -> Any:
        unit = self.inner()
        self.units.append(unit)
        return unit


async def _setup(client: Any, mongo_db: Any) -> tuple[PersistenceDispatcher, Any, Any]:
    await mongo_db["rows"].insert_many([{"_id": f"r{n:02}", "n": n} for n in range(40)])
    registry = PersistenceRegistry()
    registry.register_query_spec(Row, Rows)
    factory = RecordingFactory(MongoUnitOfWorkFactory(client, mongo_db.name))
    dispatcher = PersistenceDispatcher({"default": factory}, registry)
    spec = SpecificationBuilder().where("n", ">=", 0).build()
    return dispatcher, factory, QueryOptions().with_specification(spec).with_ordering("n")


def _loop_errors() -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    return errors


async def test_aclose_after_break_kills_the_cursor_and_closes_the_unit(
    client_and_commands: tuple[Any, Commands], mongo_db: Any
) -> None:
    client, commands = client_and_commands
    dispatcher, factory, options = await _setup(client, mongo_db)
    errors = _loop_errors()
    stream = (await dispatcher.fetch(Row, options)).stream(batch_size=5)

    async for row in stream:
        assert row.n == 0
        break
    await stream.aclose()
    # Nothing may be left for the event loop or the garbage collector to finish.
    assert commands.names[-2:] == ["find", "killCursors"]
    assert [unit.state for unit in factory.units] == [UnitOfWorkState.CLOSED]
    assert current_unit_of_work() is None
    gc.collect()
    await asyncio.sleep(0)
    assert errors == []


async def test_a_bare_break_closes_the_cursor_and_the_unit_without_errors(
    client_and_commands: tuple[Any, Commands], mongo_db: Any
) -> None:
    client, commands = client_and_commands
    dispatcher, factory, options = await _setup(client, mongo_db)
    errors = _loop_errors()

    async for row in (await dispatcher.fetch(Row, options)).stream(batch_size=5):
        assert row.n == 0
        break
    # The abandoned generator is finalised by the event loop within a few turns.
    for _ in range(20):
        if "killCursors" in commands.names:
            break
        await asyncio.sleep(0.01)
    assert commands.names[-2:] == ["find", "killCursors"]
    assert [unit.state for unit in factory.units] == [UnitOfWorkState.CLOSED]
    assert current_unit_of_work() is None  # not the closed unit the stream began here
    gc.collect()
    await asyncio.sleep(0.01)
    assert errors == []
