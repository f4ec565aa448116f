"""The CLI under test runs as a subprocess (the installed console script) against a server
that also runs as a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from cqrs_mongo.mongo import create_client
from cqrs_mongo.testing import EmbeddedMongoServer
from cqrs_mongo.testing.embedded_server import _free_port, _wait_for_port

HERE = Path(__file__).parent
SCRIPT = str(Path(sys.executable).parent / "cqrs-mongo")


@dataclass
class Cli:
    """Runs ``cqrs-mongo`` with the test app importable and the server in the environment."""

    uri: str
    database: str

    def __call__(
        self, *args: str, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "MONGODB_URI": self.uri,
            "CQRS_CLI_DB": self.database,
            "PYTHONPATH": str(HERE),
            "COLUMNS": "200",
            **env,
        }
        if "FORCE_COLOR" not in env:
            environment.pop("FORCE_COLOR", None)
        return subprocess.run(
            [SCRIPT, *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=HERE,
            timeout=timeout,
            check=False,
        )


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
