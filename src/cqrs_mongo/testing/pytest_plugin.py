"""pytest fixtures for testing code built on cqrs-mongo against a real wire protocol.

Registered automatically (entry point ``pytest11``) when ``cqrs-mongo[testing]`` is installed.

Fixtures:
    mongo_server: session-scoped; the embedded SecantusDB server, or the deployment named by
        the ``MONGODB_URI`` environment variable when it is set.
    command_counter: a :class:`CommandCounter` attached to ``mongo_client``.
    mongo_client: a ``pymongo.AsyncMongoClient`` for one test, with the package's codecs.
    mongo_db: a fresh database for one test, dropped afterwards.
    motor_client: a Motor ``AsyncIOMotorClient`` on ``mongo_server``, with no codec options of
        its own (the driver seam applies them).
    mongomock_client: a fresh in-process ``mongomock_motor.AsyncMongoMockClient``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from cqrs_mongo.mongo.monitoring import CommandCounter
from cqrs_mongo.testing.embedded_server import EmbeddedMongoServer


class ExternalMongoServer:
    """A deployment the tests did not start (``MONGODB_URI``)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[EmbeddedMongoServer | ExternalMongoServer]:
    """The server every Mongo test of the session talks to."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield ExternalMongoServer(uri)
        return
    with EmbeddedMongoServer() as server:
        yield server


@pytest.fixture
def command_counter() -> CommandCounter:
    """Counts the commands ``mongo_client`` sends; see :meth:`CommandCounter.measure`."""
    return CommandCounter()


@pytest_asyncio.fixture
async def mongo_client(
    mongo_server: EmbeddedMongoServer | ExternalMongoServer, command_counter: CommandCounter
) -> AsyncIterator[Any]:
    """A client for one test, with the package's codec options and the command counter."""
    from cqrs_mongo.mongo.driver import create_client

    client = create_client(mongo_server.uri, event_listeners=[command_counter])
    try:
        yield client
    finally:
        await client.close()


@pytest_asyncio.fixture
async def mongo_db(mongo_client: Any) -> AsyncIterator[Any]:
    """A database of its own for one test, dropped when the test ends."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    database = mongo_client[name]
    try:
        yield database
    finally:
        await mongo_client.drop_database(name)


@pytest_asyncio.fixture
async def motor_client(
    mongo_server: EmbeddedMongoServer | ExternalMongoServer,
) -> AsyncIterator[Any]:
    """A Motor client for one test, as a user would create it (no codec options)."""
    from cqrs_mongo.mongo.driver import create_motor_client

    client = create_motor_client(mongo_server.uri)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def mongomock_client() -> Any:
    """An in-process mongomock-motor client (no sessions, no transactions)."""
    from cqrs_mongo.mongo.driver import create_mongomock_client

    return create_mongomock_client()
