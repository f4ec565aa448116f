"""The CLI under test runs as a subprocess (the installed console script) against a server
that also runs as a process of its own."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cli_runner import Cli

from cqrs_mongo.mongo import create_client
from cqrs_mongo.testing import EmbeddedMongoServer
from cqrs_mongo.testing.embedded_server import _free_port, _wait_for_port


@pytest.fixture(scope="module")
def server_process() -> Iterator[EmbeddedMongoServer]:
    """A single-node replica set in a process of its own."""
    with EmbeddedMongoServer(in_process=False) as server:
        yield server


@pytest.fixture(scope="module")
def standalone_uri() -> Iterator[str]:
    """A standalone server (no transactions, no change streams) in a process of its own."""
    executable = str(Path(sys.executable).parent / "secantusd-py")
    port = _free_port()
    process = subprocess.Popen(
        [
            executable,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            ":memory:",
            "--standalone",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process)
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest_asyncio.fixture
async def shop(server_process: EmbeddedMongoServer) -> AsyncIterator[tuple[Cli, Any]]:
    """The CLI on a fresh database, and a client of the test's own on that database."""
    name = f"cli_{uuid.uuid4().hex[:12]}"
    client = create_client(server_process.uri)
    try:
        yield Cli(server_process.uri, name), client[name]
    finally:
        await client.drop_database(name)
        await client.close()
