"""Snapshots hold any state the aggregate can store (BSON), and never block an append."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from bson import Binary
from pydantic import Field

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.eventsourcing import EveryNEvents
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory

pytestmark = pytest.mark.requires_transactions

NOT_UTF8 = b"\xff\xfe\x00\x80 raw"


class Written(DomainEvent):
    chunk: bytes


class Blob(AggregateRoot[str]):
    data: bytes = b""
    writes: int = 0

    def apply_Written(self, event: Written) -> None:
        self.data = event.chunk + self.data[:32]
        self.writes += 1


class BlobRepository(EventSourcedRepository[Blob, str]):
    snapshot_strategy = EveryNEvents(5)


class ReplayingBlobRepository(EventSourcedRepository[Blob, str]):
    pass


class Tagged(DomainEvent):
    tag: str


class Labels(AggregateRoot[str]):
    # BSON has no set: the aggregate holds a state that no document can store as it is.
    tags: set[str] = Field(default_factory=set)

    def apply_Tagged(self, event: Tagged) -> None:
        self.tags = self.tags | {event.tag}


class LabelsRepository(EventSourcedRepository[Labels, str]):
    snapshot_strategy = EveryNEvents(2)


@pytest.fixture
def factory(mongo_client: Any, mongo_db: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(mongo_client, mongo_db.name)


async def test_non_utf8_bytes_never_break_appends_across_snapshot_boundaries(
    factory: MongoUnitOfWorkFactory, mongo_db: Any
) -> None:
    repository = BlobRepository()
    blob = Blob.blank("b-1")
    for n in range(12):
        blob.add_event(Written(chunk=NOT_UTF8 + bytes([n])))
        async with factory() as uow:
            await repository.persist(blob, uow)
    assert blob.version == 12

    document = await mongo_db["snapshots"].find_one({"_id": "b-1"})
    assert document is not None
    assert document["version"] == 10
    assert isinstance(document["state"]["data"], bytes | Binary)  # BSON binary, not JSON text
    async with factory(read_only=True) as uow:
        [from_snapshot] = await repository.retrieve(["b-1"], uow)
        [replayed] = await ReplayingBlobRepository().retrieve(["b-1"], uow)
    assert from_snapshot.model_dump() == replayed.model_dump() == blob.model_dump()
    assert from_snapshot.data.startswith(NOT_UTF8 + bytes([11]))


async def test_a_snapshot_that_cannot_be_encoded_is_logged_and_skipped(
    factory: MongoUnitOfWorkFactory, mongo_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    repository = LabelsRepository()
    labels = Labels.blank("c-1")
    labels.add_event(Tagged(tag="a"))
    labels.add_event(Tagged(tag="b"))
    with caplog.at_level(logging.WARNING, logger="cqrs_mongo.eventsourcing"):
        async with factory() as uow:
            await repository.persist(labels, uow)
    assert labels.version == 2
    assert await mongo_db["events"].count_documents({"stream_id": "c-1"}) == 2
    assert await mongo_db["snapshots"].count_documents({}) == 0
    assert any("snapshot" in r.message and "c-1" in r.message for r in caplog.records)
    async with factory(read_only=True) as uow:
        [loaded] = await repository.retrieve(["c-1"], uow)
    assert (loaded.version, loaded.tags) == (2, {"a", "b"})


async def test_a_snapshot_over_the_bson_limit_is_skipped_and_the_append_commits(
    factory: MongoUnitOfWorkFactory, mongo_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    class Big(AggregateRoot[str]):
        parts: list[bytes] = Field(default_factory=list)

        def apply_Written(self, event: Written) -> None:
            self.parts = [*self.parts, event.chunk]

    class BigRepository(EventSourcedRepository[Big, str]):
        snapshot_strategy = EveryNEvents(5)

    big = Big.blank("big")
    for _ in range(5):
        big.add_event(Written(chunk=b"x" * 4_000_000))  # each event fits, the state does not
    with caplog.at_level(logging.WARNING, logger="cqrs_mongo.eventsourcing"):
        async with factory() as uow:
            await BigRepository().persist(big, uow)
    assert big.version == 5
    assert await mongo_db["events"].count_documents({"stream_id": "big"}) == 5
    assert await mongo_db["snapshots"].count_documents({}) == 0
    assert any("snapshot" in r.message for r in caplog.records)
