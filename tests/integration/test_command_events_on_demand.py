"""Clients made by ``create_client`` build command events only while someone observes them."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import monitoring

from cqrs_mongo.mongo import create_client
from cqrs_mongo.mongo.monitoring import COMMAND_FORWARDER, FinishedCommand, StartedCommand
from cqrs_mongo.testing import CommandCounter


class Recorder:
    def __init__(self) -> None:
        self.started: list[str] = []

    def command_started(self, command: StartedCommand) -> None:
        self.started.append(command.operation)

    def command_finished(self, command: FinishedCommand) -> None:
        return None


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the command-started events pymongo builds."""
    names: list[str] = []
    original = monitoring.CommandStartedEvent.__init__

    def counting(self: Any, command: Any, *args: Any, **kwargs: Any) -> None:
        original(self, command, *args, **kwargs)
        names.append(self.command_name)

    monkeypatch.setattr(monitoring.CommandStartedEvent, "__init__", counting)
    return names


async def test_no_command_event_is_built_while_nobody_observes(
    mongo_server: Any, built: list[str]
) -> None:
    client = create_client(mongo_server.uri)
    recorder = Recorder()
    try:
        await client["events_on_demand"]["c"].insert_one({"n": 1})
        assert "insert" not in built
        COMMAND_FORWARDER.subscribe(recorder)  # after the client was made: covered all the same
        try:
            await client["events_on_demand"]["c"].insert_one({"n": 2})
        finally:
            COMMAND_FORWARDER.unsubscribe(recorder)
        assert built.count("insert") == 1
        assert "insert" in recorder.started
        await client["events_on_demand"]["c"].insert_one({"n": 3})
        assert built.count("insert") == 1
    finally:
        await client.drop_database("events_on_demand")
        await client.close()


async def test_a_client_with_its_own_listener_keeps_every_event(
    mongo_server: Any, built: list[str]
) -> None:
    counter = CommandCounter()
    client = create_client(mongo_server.uri, event_listeners=[counter])
    try:
        await client["events_on_demand_2"]["c"].insert_one({"n": 1})
        assert counter.counts["insert"] == 1
        assert built.count("insert") == 1
    finally:
        await client.drop_database("events_on_demand_2")
        await client.close()
