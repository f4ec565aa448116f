"""Invalidations lost in a Redis outage, across processes (real Redis, embedded MongoDB).

Each application process runs ``cache_process.py`` with its own dispatcher and Redis client,
connected to Redis through a TCP proxy this test owns: closing the proxy is an outage for every
process, reopening it brings Redis back *with its data*, as a restart from the append-only file
does (the test never touches Redis itself, and uses its own key namespace).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis

pytestmark = pytest.mark.redis

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PROCESS = Path(__file__).with_name("cache_process.py")


class RedisProxy:
    """Forwards TCP connections to Redis; ``down()`` drops them all and refuses new ones."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(REDIS_HOST, REDIS_PORT)
        self._writers.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._writers.difference_update((writer, upstream_writer))


class AppProcess:
    """One application process; :meth:`ask` sends a command and returns its answer."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, *args: str) -> AppProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(PROCESS),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
        return cls(process)

    async def ask(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        assert line, f"process exited with {await self.process.wait()} during {op!r}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def read(self, ticket_id: str = "t1") -> str:
        status: str = (await self.ask("read", id=ticket_id))["status"]
        return status

    async def kill(self) -> None:
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                await self.kill()


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[RedisProxy]:
    proxy = RedisProxy()
    await proxy.up()
    yield proxy
    if proxy._server is not None:
        await proxy.down()


@pytest_asyncio.fixture
async def namespace() -> AsyncIterator[str]:
    namespace = f"test-procs-{uuid.uuid4().hex[:12]}"
    yield namespace
    client = Redis(host=REDIS_HOST, port=REDIS_PORT)
    keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest_asyncio.fixture
async def apps(
    mongo_server: Any, mongo_db: Any, proxy: RedisProxy, namespace: str
) -> AsyncIterator[tuple[AppProcess, AppProcess]]:
    args = (mongo_server.uri, mongo_db.name, f"redis://127.0.0.1:{proxy.port}/0", namespace)
    writer, reader = await asyncio.gather(AppProcess.start(*args), AppProcess.start(*args))
    yield writer, reader
    await asyncio.gather(writer.stop(), reader.stop())


async def cached_everywhere(writer: AppProcess, reader: AppProcess) -> None:
    """Ticket t1 stored as "open" and in the reader's cache (its second read is a hit)."""
    await writer.ask("seed", id="t1")
    assert [await reader.read(), await reader.read()] == ["open", "open"]
    assert (await reader.ask("stats"))["stats"]["hits"] == 1


async def test_a_reader_that_saw_the_outage_never_serves_an_entry_from_before_it(
    apps: tuple[AppProcess, AppProcess], proxy: RedisProxy
) -> None:
    writer, reader = apps
    await cached_everywhere(writer, reader)

    await proxy.down()
    await writer.ask("set", id="t1", status="closed")  # its invalidation cannot reach Redis
    assert await reader.read() == "closed"  # from MongoDB: the reader sees the outage
    await writer.kill()  # the writer's pending invalidation dies with it
    await proxy.up()  # Redis is back with its data, the old entry included

    reads = []
    for _ in range(20):
        reads.append(await reader.read())
        await asyncio.sleep(0.05)
    assert reads == ["closed"] * 20
    assert (await reader.ask("stats"))["stats"]["hits"] >= 10  # and the cache is used again


async def test_an_idle_writer_pays_its_lost_invalidation_when_redis_returns(
    apps: tuple[AppProcess, AppProcess], proxy: RedisProxy
) -> None:
    writer, reader = apps
    await cached_everywhere(writer, reader)

    await proxy.down()
    await writer.ask("set", id="t1", status="closed")  # the reader does nothing meanwhile
    await proxy.up()

    settled = await writer.ask("settle", seconds=5)  # the writer makes no call of its own
    reads = [await reader.read() for _ in range(10)]
    assert settled["settled"] is True
    assert reads == ["closed"] * 10
