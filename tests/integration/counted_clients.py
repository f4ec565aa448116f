"""A client counting its commands, on a database of its own: shared by the fault tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cqrs_mongo.mongo.driver import create_client
from cqrs_mongo.testing import CommandCounter


@asynccontextmanager
async def counted_client(uri: str, counter: CommandCounter, prefix: str) -> AsyncIterator[Any]:
    """A ``create_client`` client reporting to ``counter``; ``client.test_database_name`` is a
    fresh database (``<prefix>_<random>``), dropped afterwards.

    A short heartbeat: a "shutting down" error (91) makes the driver re-check the server
    before retrying, and the default 10 s heartbeat would make these tests slow.
    """
    client = create_client(uri, event_listeners=[counter], heartbeatFrequencyMS=500)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    client.test_database_name = name
    try:
        yield client
    finally:
        await client.drop_database(name)
        await client.close()
