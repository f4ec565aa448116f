"""One active worker per projection, and takeover after kill -9, with separate processes."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.eventsourcing.event_store import MongoEventStore
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork, MongoUnitOfWorkFactory
from cqrs_mongo.testing.embedded_server import EmbeddedMongoServer

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]

PROC = Path(__file__).parent / "procs" / "projection_worker_proc.py"
DB = "takeover"
TAKEOVER_LIMIT = 10.0  # seconds, with the default 5 s lease


class Deposited(DomainEvent):
    amount: int


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedMongoServer]:
    with EmbeddedMongoServer(in_process=False) as running:
        yield running


@pytest.fixture
async def client(server: EmbeddedMongoServer) -> AsyncIterator[Any]:
    connected = driver.create_client(server.uri)
    await connected.drop_database(DB)
    yield connected
    await connected.close()


def spawn(uri: str, worker_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(PROC), uri, DB, worker_id],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def deposit(factory: MongoUnitOfWorkFactory, account: str, amount: int) -> None:
    async def append(uow: MongoUnitOfWork) -> None:
        store = MongoEventStore(uow.database)
        version = await store.stream_version(account, uow=uow)
        await store.append(account, [Deposited(amount=amount)], version, stream_type="A", uow=uow)

    await factory.run(append)


async def checkpoint(db: Any) -> dict[str, Any]:
    return await db["projection_checkpoints"].find_one({"_id": "balances"}) or {}


async def test_a_standby_takes_over_within_the_lease_after_kill_9_mid_batch(
    server: EmbeddedMongoServer, client: Any
) -> None:
    db = driver.get_database(client, DB)
    factory = MongoUnitOfWorkFactory(client, DB, retry_budget_seconds=120)
    await MongoEventStore(db).ensure_indexes()
    rng = random.Random(11)
    accounts = [f"acct-{n}" for n in range(30)]
    for _ in range(300):  # a backlog: the leader is mid-batch most of the time
        await deposit(factory, rng.choice(accounts), rng.randint(1, 9))
    done = asyncio.Event()

    async def keep_writing() -> None:
        while not done.is_set():
            await deposit(factory, rng.choice(accounts), rng.randint(1, 9))
            await asyncio.sleep(0.02)

    procs = {name: spawn(server.uri, name) for name in ("w0", "w1")}
    writer = asyncio.create_task(keep_writing())
    takeovers: list[float] = []
    try:
        for round_ in range(3):
            leader = await wait_for_leader(db, procs)
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            before = await checkpoint(db)
            os.kill(procs[leader].pid, signal.SIGKILL)
            killed_at = datetime.now(UTC)
            procs[leader].wait()
            del procs[leader]
            procs[f"w{round_ + 2}"] = spawn(server.uri, f"w{round_ + 2}")  # a new standby
            takeovers.append(await wait_for_takeover(db, leader, before, killed_at))
        done.set()
        await writer
        await wait_until_applied(db)
    finally:
        done.set()
        for proc in procs.values():
            proc.kill()
            proc.wait()

    assert max(takeovers) < TAKEOVER_LIMIT, takeovers
    expected: dict[str, dict[str, Any]] = defaultdict(lambda: {"total": 0, "versions": []})
    async for doc in db["events"].find({}).sort([("stream_id", 1), ("version", 1)]):
        expected[doc["stream_id"]]["total"] += doc["payload"]["amount"]
        expected[doc["stream_id"]]["versions"].append(doc["version"])
    documents = {doc["_id"]: doc async for doc in db["balances"].find({})}
    everything = documents.pop("all-accounts")
    for account, fold in expected.items():
        assert documents[account]["versions"] == fold["versions"], account  # once each
        assert documents[account]["total"] == fold["total"], account
    assert everything["events"] == sum(len(f["versions"]) for f in expected.values())
    print(f"takeover seconds after kill -9: {[round(t, 2) for t in takeovers]}")


async def wait_for_leader(db: Any, procs: dict[str, Any], limit: float = 60.0) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        lease = (await checkpoint(db)).get("lease") or {}
        expires = lease.get("expires_at")
        if lease.get("owner") in procs and expires and expires > datetime.now(UTC):
            return str(lease["owner"])
        await asyncio.sleep(0.1)
    raise AssertionError("no worker took the lease")


async def wait_for_takeover(
    db: Any, killed: str, before: dict[str, Any], killed_at: datetime, limit: float = 60.0
) -> float:
    """Seconds from the kill to the first checkpoint a new leader committed."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        now = await checkpoint(db)
        owner = (now.get("lease") or {}).get("owner")
        moved = now.get("events", 0) > before.get("events", 0) and now["at"] > killed_at
        if owner not in (None, killed) and moved:
            return (now["at"] - killed_at).total_seconds()
        await asyncio.sleep(0.05)
    raise AssertionError(f"no worker took over from {killed} within {limit} s")


async def wait_until_applied(db: Any, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    total = await db["events"].count_documents({})
    while time.monotonic() < deadline:
        everything = await db["balances"].find_one({"_id": "all-accounts"}) or {}
        if everything.get("events") == total:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the projection did not catch up")
