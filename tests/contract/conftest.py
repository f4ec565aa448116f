"""Backends the contract suites run on: mongomock-motor, the embedded server, Motor on it.

A suite is an abstract class with ``create_*`` factories; each concrete ``Test...`` subclass
binds one backend through the ``backend`` fixture. ``requires_transactions`` tests are skipped
only on backends whose ``supports_transactions`` is false (mongomock); on the others they run
and fail loudly if the server cannot do what is asked.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from cqrs_mongo.mongo import MongoUnitOfWorkFactory
from cqrs_mongo.mongo.driver import get_database


@dataclass
class Backend:
    """A client and database a suite runs against."""

    name: str
    client: Any
    database_name: str
    supports_transactions: bool

    def factory(self, **options: Any) -> MongoUnitOfWorkFactory:
        return MongoUnitOfWorkFactory(self.client, self.database_name, **options)

    @property
    def database(self) -> Any:
        """The database through the driver seam (package codecs on every driver)."""
        return get_database(self.client, self.database_name)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("requires_transactions") is None:
        return
    if getattr(item.cls, "supports_transactions", True) is False:
        pytest.skip("this backend has no multi-document transactions")


@pytest.fixture
def mongomock_backend(mongomock_client: Any) -> Backend:
    return Backend("mongomock", mongomock_client, "contract", supports_transactions=False)


@pytest.fixture
def embedded_backend(mongo_client: Any, mongo_db: Any) -> Backend:
    return Backend("embedded", mongo_client, mongo_db.name, supports_transactions=True)


@pytest_asyncio.fixture
async def motor_backend(motor_client: Any) -> AsyncIterator[Backend]:
    name = f"test_motor_{uuid.uuid4().hex[:12]}"
    try:
        yield Backend("motor", motor_client, name, supports_transactions=True)
    finally:
        await motor_client.drop_database(name)
