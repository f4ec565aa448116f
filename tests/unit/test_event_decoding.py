"""Decoding stored event documents: a malformed one is an EventDecodingError, never a KeyError."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from cqrs_mongo.errors import CqrsMongoError, EventDecodingError
from cqrs_mongo.mongo.eventsourcing.event_store import event_from_document, streams_filter


def stored_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "_id": uuid4(),
        "stream_id": "s-1",
        "stream_type": "Order",
        "version": 3,
        "event_type": "Created",
        "schema_version": 1,
        "payload": {"total": 1},
        "metadata": {"correlation_id": None, "causation_id": None},
        "occurred_at": datetime(2024, 1, 1, tzinfo=UTC),
    }
    for key, value in changes.items():
        if value is KeyError:
            del document[key]
        else:
            document[key] = value
    return document


def test_a_well_formed_document_decodes() -> None:
    event = event_from_document(stored_document())
    assert (event.stream_id, event.version, event.payload) == ("s-1", 3, {"total": 1})


@pytest.mark.parametrize(
    "field", ["occurred_at", "stream_type", "version", "event_type", "payload", "_id", "stream_id"]
)
def test_a_missing_field_is_named(field: str) -> None:
    with pytest.raises(EventDecodingError) as caught:
        event_from_document(stored_document(**{field: KeyError}))
    assert caught.value.field == field
    assert isinstance(caught.value, CqrsMongoError)
    assert not isinstance(caught.value, KeyError)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"payload": "text"}, "payload"),
        ({"payload": [["a", 1]]}, "payload"),
        ({"stream_id": {"tenant": 1}}, "stream_id"),
        ({"stream_id": [1, 2]}, "stream_id"),
        ({"version": "3"}, "version"),
        ({"version": 0}, "version"),
        ({"version": True}, "version"),
        ({"version": None}, "version"),
        ({"stream_type": 7}, "stream_type"),
        ({"schema_version": "1"}, "schema_version"),
        ({"occurred_at": "2024-01-01"}, "occurred_at"),
    ],
)
def test_a_malformed_field_is_named_with_stream_and_version(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(EventDecodingError) as caught:
        event_from_document(stored_document(**changes))
    error = caught.value
    assert error.field == field
    assert error.stream_id == changes.get("stream_id", "s-1")
    assert field in str(error)


def test_the_error_names_stream_type_id_and_version() -> None:
    with pytest.raises(EventDecodingError, match=r"Order 's-1', version 3, field 'occurred_at'"):
        event_from_document(stored_document(occurred_at=KeyError))


def test_one_stream_is_queried_by_equality() -> None:
    assert streams_filter({"s-1": 0}) == {"stream_id": "s-1"}
    assert streams_filter({"s-1": 4}) == {"stream_id": "s-1", "version": {"$gt": 4}}
    assert streams_filter({"a": 0, "b": 0}) == {"stream_id": {"$in": ["a", "b"]}}
