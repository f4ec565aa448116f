"""The catch-up feed reads the next batch while the last one is applied, and never lets that
read ahead change what a read returns: a read that goes on from anywhere but the last batch's
end, a failed read ahead, and a feed closed mid-read all give exactly the events after the
position asked for, each once, in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from pymongo import monitoring
from pymongo.errors import OperationFailure
from tests.integration.account_streams import account, write_accounts

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.mongo.driver import create_client
from cqrs_mongo.mongo.projections.event_feed import FeedItem, FeedPosition, MongoEventFeed
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory
from cqrs_mongo.projections import Projection, ProjectionContext
from cqrs_mongo.testing import fail_command

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]

STREAMS, PER_STREAM, BATCH = 4, 10, 6  # 40 events


class Deposited(DomainEvent):
    amount: int


class Sent(monitoring.CommandListener):
    """The names of the commands sent, in order (handshakes left out)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: Any) -> None:
        if event.command_name not in {"hello", "isMaster", "endSessions"}:
            self.names.append(event.command_name)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


def all_keys() -> list[tuple[str, int]]:
    return [(account(n), v) for n in range(STREAMS) for v in range(1, PER_STREAM + 1)]


def keys(items: list[FeedItem]) -> list[tuple[Any, int]]:
    return [(item.event.stream_id, item.event.version) for item in items]


@dataclass
class Fed:
    """A client (whose commands ``sent`` records) over the seeded events, and a feed of them
    with its origin."""

    client: Any
    sent: Sent
    feed: MongoEventFeed
    origin: FeedPosition


@pytest_asyncio.fixture
async def fed(mongo_server: Any, mongo_db: Any) -> AsyncIterator[Fed]:
    sent = Sent()
    client = create_client(mongo_server.uri, event_listeners=[sent])
    factory = MongoUnitOfWorkFactory(client, mongo_db.name)
    await write_accounts(factory, Deposited, STREAMS, PER_STREAM)
    feed = MongoEventFeed(client[mongo_db.name])
    try:
        yield Fed(client, sent, feed, await feed.origin())
    finally:
        await feed.close()
        await client.close()


def reading_ahead() -> bool:
    return any(
        task.get_coro().__qualname__ == "_read_ahead"  # type: ignore[union-attr]
        for task in asyncio.all_tasks()
        if not task.done()
    )


async def read_all(feed: MongoEventFeed, position: FeedPosition) -> list[FeedItem]:
    # To the end of the catch-up read (``covers``: the change stream is not opened).
    read: list[FeedItem] = []
    while True:
        items, position = await feed.read(position, BATCH, covers=position.start_at)
        if not items:
            return read
        read += items


async def test_reading_on_from_each_batch_uses_one_cursor_read_ahead(fed: Fed) -> None:
    fed.sent.names.clear()

    first, after = await fed.feed.read(fed.origin, BATCH)
    await asyncio.sleep(0.05)  # the caller applies the batch meanwhile
    assert fed.sent.names == ["find", "getMore"]  # the next batch is already on its way

    read = first + await read_all(fed.feed, after)

    assert keys(read) == all_keys()
    assert fed.sent.names.count("find") == 1
    assert fed.sent.names.count("getMore") == STREAMS * PER_STREAM // BATCH


async def test_a_read_from_inside_the_last_batch_drops_the_read_ahead(fed: Fed) -> None:
    # A batch that ran out of time checkpoints before its end: the worker reads on from
    # there, and the events read ahead (after the batch's end) must not be handed out.
    first, _ = await fed.feed.read(fed.origin, BATCH)
    await asyncio.sleep(0.05)

    read = first[:2] + await read_all(fed.feed, first[1].position)

    assert keys(read) == all_keys()
    assert fed.sent.names.count("killCursors") >= 1  # the read ahead's cursor was closed


async def test_a_failed_read_ahead_fails_the_next_read_and_loses_nothing(
    fed: Fed, mongo_client: Any
) -> None:
    async with fail_command(mongo_client, ["getMore"], error_code=2):
        first, after = await fed.feed.read(fed.origin, BATCH)
        with pytest.raises(OperationFailure):
            await fed.feed.read(after, BATCH)

    read = first + await read_all(fed.feed, after)

    assert keys(read) == all_keys()


async def test_a_feed_closed_while_reading_ahead_leaves_no_cursor_or_task(
    fed: Fed, mongo_client: Any, mongo_db: Any
) -> None:
    async with fail_command(mongo_client, ["getMore"], block_ms=2_000):
        await fed.feed.read(fed.origin, BATCH)
        await asyncio.sleep(0.1)  # the read ahead's getMore is held by the server
        assert reading_ahead()
        await asyncio.wait_for(fed.feed.close(), timeout=1)  # not held up by the getMore

    assert not reading_ahead()
    assert fed.sent.names[-1] == "killCursors"
    again = await read_all(MongoEventFeed(fed.client[mongo_db.name]), fed.origin)
    assert keys(again) == all_keys()


class Balances(Projection):
    name = "read_ahead_balances"

    async def on_Deposited(self, event: Deposited, ctx: ProjectionContext) -> None:
        await ctx.upsert(ctx.stream_id, {"$inc": {"total": event.amount}})


async def test_a_catch_up_sends_the_next_getmore_before_the_batch_commits(
    fed: Fed, mongo_db: Any
) -> None:
    factory = MongoUnitOfWorkFactory(fed.client, mongo_db.name)
    worker = MongoProjectionWorker(Balances(), factory, batch_size=BATCH)
    await worker._target()
    fed.sent.names.clear()

    await worker.run_until_caught_up()

    first_commit = fed.sent.names.index("commitTransaction")
    assert "getMore" in fed.sent.names[:first_commit]
    docs = await fed.client[mongo_db.name][Balances.name].find().to_list()
    assert {d["_id"]: d["total"] for d in docs} == {
        account(n): sum(n + k for k in range(PER_STREAM)) for n in range(STREAMS)
    }
