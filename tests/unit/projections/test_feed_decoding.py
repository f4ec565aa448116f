"""The feed decodes a stored event on its fast path exactly as its checked path would.

``decode_event`` skips ``undecodable_reason`` for documents of the shape the store writes;
these tests hold it to "the reason, else ``event_from_document``" on well-formed and
malformed documents alike, so the fast path can never let through what the checks park.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from uuid import uuid4

import pytest
from bson import SON, ObjectId, Timestamp
from tests.unit.test_event_decoding import stored_document

from cqrs_mongo.mongo.eventsourcing.event_store import event_from_document
from cqrs_mongo.mongo.projections.event_feed import (
    FeedItem,
    FeedPosition,
    decode_event,
    undecodable_reason,
)


def checked_path(document: dict[str, Any]) -> tuple[Any, str | None]:
    """What decode_event gives for ``document`` with every check run."""
    reason = undecodable_reason(document)
    if reason is not None:
        return None, reason
    try:
        return event_from_document(document), None
    except Exception as exc:
        return None, f"stored event cannot be decoded: {type(exc).__name__}: {exc}"


DOCUMENTS = {
    "well formed": stored_document(),
    "int stream id": stored_document(stream_id=7),
    "ObjectId stream id": stored_document(stream_id=ObjectId()),
    "uuid stream id": stored_document(stream_id=uuid4()),
    "no metadata": stored_document(metadata=KeyError),
    "no schema version": stored_document(schema_version=KeyError),
    "None stream id": stored_document(stream_id=None),
    "bool stream id": stored_document(stream_id=True),
    "dict stream id": stored_document(stream_id={"a": 1}),
    "SON stream id": stored_document(stream_id=SON([("a", 1)])),
    "OrderedDict stream id": stored_document(stream_id=OrderedDict(a=1)),
    "list stream id": stored_document(stream_id=[1]),
    "bool version": stored_document(version=True),
    "zero version": stored_document(version=0),
    "float version": stored_document(version=1.0),
    "missing version": stored_document(version=KeyError),
    "string occurred_at": stored_document(occurred_at="2026-01-02"),
    "None payload": stored_document(payload=None),
    "missing payload": stored_document(payload=KeyError),
    "list payload": stored_document(payload=[1]),
    "SON payload": stored_document(payload=SON([("amount", 5)])),
    "None event type": stored_document(event_type=None),
    "int event type": stored_document(event_type=3),
    "bool schema version": stored_document(schema_version=True),
    "missing _id": stored_document(_id=KeyError),
}


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_decode_event_agrees_with_the_checked_path(name: str) -> None:
    document = DOCUMENTS[name]
    event, reason = decode_event(document)
    expected_event, expected_reason = checked_path(document)
    assert reason == expected_reason
    if expected_reason is None:
        assert event == expected_event


def test_malformed_documents_are_named_not_decoded() -> None:
    # The table above must exercise the slow path too, or the agreement proves little.
    reasons = [decode_event(d)[1] for d in DOCUMENTS.values()]
    assert sum(reason is None for reason in reasons) == 8  # the other 17 are parked, each named


def test_a_catch_up_item_builds_its_position_from_the_stored_values() -> None:
    base = FeedPosition(start_at=Timestamp(7, 1), fresh=True)
    document = stored_document(stream_id=None, version="x")  # undecodable: the keyset goes on
    item = FeedItem.caught_up(*decode_event(document), base, document)
    assert item.undecodable is not None
    assert item.position == FeedPosition(start_at=Timestamp(7, 1), after=(None, "x"), fresh=True)
    assert item.position is item.position  # built once: the feed checks identity


def test_a_feed_item_without_its_position_or_what_makes_it_is_refused() -> None:
    event, _ = decode_event(stored_document())
    with pytest.raises(ValueError, match="needs its position"):
        FeedItem(event, None)
