"""The feed decodes a stored event on its fast path exactly as its checked path would.

``decode_event`` skips ``undecodable_reason`` for documents of the shape the store writes;
these tests hold it to "the reason, else ``event_from_document``" on well-formed and
malformed documents alike, so the fast path can never let through what the checks park.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from bson import SON, ObjectId

from cqrs_mongo.mongo.eventsourcing.event_store import event_from_document
from cqrs_mongo.mongo.projections.event_feed import decode_event, undecodable_reason


def checked_path(document: dict[str, Any]) -> tuple[Any, str | None]:
    """What decode_event gives for ``document`` with every check run."""
    reason = undecodable_reason(document)
    if reason is not None:
        return None, reason
    try:
        return event_from_document(document), None
    except Exception as exc:
        return None, f"stored event cannot be decoded: {type(exc).__name__}: {exc}"


def stored(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "_id": uuid4(),
        "stream_id": "acct-1",
        "stream_type": "Account",
        "version": 3,
        "event_type": "Deposited",
        "schema_version": 1,
        "payload": {"amount": 5},
        "metadata": {"correlation_id": "c", "causation_id": None},
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
    }
    document.update(changes)
    return {k: v for k, v in document.items() if v is not _MISSING}


_MISSING = object()

DOCUMENTS = {
    "well formed": stored(),
    "int stream id": stored(stream_id=7),
    "ObjectId stream id": stored(stream_id=ObjectId()),
    "uuid stream id": stored(stream_id=uuid4()),
    "no metadata": stored(metadata=_MISSING),
    "no schema version": stored(schema_version=_MISSING),
    "None stream id": stored(stream_id=None),
    "bool stream id": stored(stream_id=True),
    "dict stream id": stored(stream_id={"a": 1}),
    "SON stream id": stored(stream_id=SON([("a", 1)])),
    "OrderedDict stream id": stored(stream_id=OrderedDict(a=1)),
    "list stream id": stored(stream_id=[1]),
    "bool version": stored(version=True),
    "zero version": stored(version=0),
    "float version": stored(version=1.0),
    "missing version": stored(version=_MISSING),
    "string occurred_at": stored(occurred_at="2026-01-02"),
    "None payload": stored(payload=None),
    "missing payload": stored(payload=_MISSING),
    "list payload": stored(payload=[1]),
    "SON payload": stored(payload=SON([("amount", 5)])),
    "None event type": stored(event_type=None),
    "int event type": stored(event_type=3),
    "bool schema version": stored(schema_version=True),
    "missing _id": stored(_id=_MISSING),
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
