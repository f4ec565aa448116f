"""pytest fixtures for testing code built on cqrs-mongo against a real wire protocol.

Registered automatically (entry point ``pytest11``) when ``cqrs-mongo[testing]`` is installed.

Fixtures:
    mongo_server: session-scoped; the embedded SecantusDB server, or the deployment named by
        the ``MONGODB_URI`` environment variable when it is set.
    command_counter: a :class:`CommandCounter` attached to ``mongo_client``.
    mongo_client: a ``pymongo.AsyncMongoClient`` for one test, with the package's codecs and a
        500 ms heartbeat (failpoint tests need not wait the default 10 s).
    mongo_db: a fresh database for one test, dropped afterwards.
    motor_client: a Motor ``AsyncIOMotorClient`` on ``mongo_server``, with no codec options of
        its own (the driver seam applies them).
    mongomock_client: a fresh in-process ``mongomock_motor.AsyncMongoMockClient``.

The async fixtures run on the requesting test's event loop in any pytest-asyncio mode and loop
scope (``@pytest.mark.asyncio(loop_scope=...)`` or ``asyncio_default_test_loop_scope``). In
strict mode (pytest-asyncio's default) tests must still be marked ``@pytest.mark.asyncio``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

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


# The async fixtures run on the event loop of the test that asks for them, whatever
# pytest-asyncio's mode and loop scope: a client is bound to the loop it first runs on, so a
# client (or a database drop) on another loop than the test's fails. ``mongo_client`` and
# friends are plain fixtures that pick, per test, the variant whose loop scope is the test's.
LoopScope = Literal["function", "class", "module", "package", "session"]
LOOP_SCOPES: tuple[LoopScope, ...] = ("function", "class", "module", "package", "session")

# A "shutting down" (91) or "not primary" error makes the driver re-check the server before
# it selects it again; the default 10 s heartbeat would make every such test wait 10 s.
# 500 ms is the driver's minimum heartbeat.
CLIENT_OPTIONS: dict[str, Any] = {"heartbeatFrequencyMS": 500}


def test_loop_scope(request: pytest.FixtureRequest) -> str:
    """The loop scope pytest-asyncio runs the requesting test in.

    Raises:
        pytest.UsageError: the test's ``asyncio`` marker names an unknown loop scope.
    """
    marker = request.node.get_closest_marker("asyncio")
    scope = None
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
    if scope is None:
        try:
            scope = request.config.getini("asyncio_default_test_loop_scope")
        except ValueError:  # an older pytest-asyncio without the option
            scope = None
    scope = scope or "function"
    if scope not in LOOP_SCOPES:
        raise pytest.UsageError(f"Unknown asyncio loop scope {scope!r}; use one of {LOOP_SCOPES}.")
    return str(scope)


def _variant(request: pytest.FixtureRequest, name: str) -> Any:
    return request.getfixturevalue(f"_cqrs_mongo_{name}_{test_loop_scope(request)}")


@pytest.fixture
def mongo_client(request: pytest.FixtureRequest) -> Any:
    """A ``pymongo.AsyncMongoClient`` for one test, with the package's codec options, the
    command counter and a 500 ms heartbeat, on the test's event loop."""
    return _variant(request, "client")


@pytest.fixture
def mongo_db(request: pytest.FixtureRequest) -> Any:
    """A database of its own for one test (on ``mongo_client``), dropped when the test ends."""
    # The client first, from this synchronous fixture: the database fixture's async set-up
    # finds it ready instead of having to set up an async fixture inside a running loop.
    _variant(request, "client")
    return _variant(request, "db")


@pytest.fixture
def motor_client(request: pytest.FixtureRequest) -> Any:
    """A Motor client for one test, as a user would create it (no codec options)."""
    return _variant(request, "motor")


def _define_variants(loop_scope: LoopScope) -> None:
    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def client_variant(
        mongo_server: EmbeddedMongoServer | ExternalMongoServer, command_counter: CommandCounter
    ) -> AsyncIterator[Any]:
        from cqrs_mongo.mongo.driver import create_client

        client = create_client(
            mongo_server.uri, event_listeners=[command_counter], **CLIENT_OPTIONS
        )
        try:
            yield client
        finally:
            await client.close()

    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def db_variant(mongo_client: Any) -> AsyncIterator[Any]:
        # ``mongo_client`` resolves to the client variant of the same test, hence the same
        # loop scope; asking for it here, not inside the coroutine, keeps its setup outside
        # this fixture's running loop.
        client = mongo_client
        name = f"test_{uuid.uuid4().hex[:16]}"
        try:
            yield client[name]
        finally:
            await client.drop_database(name)

    @pytest_asyncio.fixture(loop_scope=loop_scope)
    async def motor_variant(
        mongo_server: EmbeddedMongoServer | ExternalMongoServer,
    ) -> AsyncIterator[Any]:
        from cqrs_mongo.mongo.driver import create_motor_client

        client = create_motor_client(mongo_server.uri, **CLIENT_OPTIONS)
        try:
            yield client
        finally:
            client.close()

    for kind, fixture in (("client", client_variant), ("db", db_variant), ("motor", motor_variant)):
        globals()[f"_cqrs_mongo_{kind}_{loop_scope}"] = fixture


for _scope in LOOP_SCOPES:
    _define_variants(_scope)


@pytest.fixture
def mongomock_client() -> Any:
    """An in-process mongomock-motor client (no sessions, no transactions)."""
    from cqrs_mongo.mongo.driver import create_mongomock_client

    return create_mongomock_client()
