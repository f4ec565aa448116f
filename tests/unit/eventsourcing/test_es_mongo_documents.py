"""The Mongo event documents and the per-stream read filter, checked without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from cqrs_mongo.eventsourcing import StoredEvent
from cqrs_mongo.mongo.eventsourcing.event_store import (
    event_from_document,
    event_to_document,
    streams_filter,
)


def test_event_document_layout_and_round_trip() -> None:
    event = StoredEvent(
        stream_id="o-1",
        stream_type="Order",
        version=3,
        event_type="OrderSubmitted",
        schema_version=2,
        payload={"order_id": "o-1"},
        event_id=uuid4(),
        occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
        correlation_id="corr",
        causation_id="cmd",
    )

    document = event_to_document(event)

    assert document["_id"] == event.event_id
    assert document["metadata"] == {"correlation_id": "corr", "causation_id": "cmd"}
    assert {k: document[k] for k in ("stream_id", "version", "event_type", "schema_version")} == {
        "stream_id": "o-1",
        "version": 3,
        "event_type": "OrderSubmitted",
        "schema_version": 2,
    }
    assert event_from_document(document) == event


def test_streams_without_snapshots_share_one_in_clause() -> None:
    # Read from the start: no version clause, so a malformed version is seen, not skipped.
    assert streams_filter({"a": 0, "b": 0}) == {"stream_id": {"$in": ["a", "b"]}}


def test_each_snapshot_version_gets_its_own_branch() -> None:
    assert streams_filter({"a": 0, "b": 10, "c": 10, "d": 20}) == {
        "$or": [
            {"stream_id": "a"},
            {"stream_id": {"$in": ["b", "c"]}, "version": {"$gt": 10}},
            {"stream_id": "d", "version": {"$gt": 20}},
        ]
    }
