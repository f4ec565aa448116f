"""Rebuilding from Mongo documents decodes each one as the StoredEvent path does, errors included.

``document_decoder`` skips the :class:`StoredEvent` envelope for speed; these tests hold it to
``registry.to_event(event_from_document(document))`` on well-formed, old, unknown and invalid
documents alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest

from cqrs_mongo.domain import DomainEvent
from cqrs_mongo.errors import ConfigurationError, EventDecodingError, UnknownEventTypeError
from cqrs_mongo.eventsourcing import EventRegistry, UpcasterChain
from cqrs_mongo.mongo.eventsourcing.event_store import (
    document_decoder,
    event_from_document,
    is_plainly_well_formed,
)


class Priced(DomainEvent):
    schema_version: ClassVar[int] = 2
    sku: str
    price: Decimal


class Noted(DomainEvent):
    event_type: ClassVar[str] = "note.added"
    text: str
    at: datetime | None = None


class Audited(DomainEvent):
    """An event class with its own model_validate: decoding must still call it."""

    calls: ClassVar[int] = 0
    who: str

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Audited:  # type: ignore[override]
        Audited.calls += 1
        return super().model_validate(obj, **kwargs)


def registry() -> EventRegistry:
    chain = UpcasterChain()

    @chain.register("Priced", from_version=1)
    def cents_to_price(payload: dict[str, Any]) -> dict[str, Any]:
        return {"sku": payload["sku"], "price": Decimal(payload.pop("cents")) / 100}

    return EventRegistry([Priced, Noted, Audited], upcasters=chain)


def document(event_type: str, payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    stored: dict[str, Any] = {
        "_id": uuid4(),
        "stream_id": "cart-1",
        "stream_type": "Cart",
        "version": 4,
        "event_type": event_type,
        "schema_version": 1,
        "payload": payload,
        "metadata": {"correlation_id": "corr-1", "causation_id": "cmd-1"},
        "occurred_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    }
    stored.update(changes)
    return stored


def both_ways(stored: dict[str, Any]) -> tuple[Any, Any]:
    """What the fast decoder and the StoredEvent path each return, or the error they raise."""
    results = []
    for decode in (document_decoder(registry()), _stored_event_path(registry())):
        try:
            results.append(decode(stored))
        except Exception as exc:
            results.append(exc)
    return results[0], results[1]


def _stored_event_path(events: EventRegistry) -> Any:
    return lambda stored: events.to_event(event_from_document(stored))


CASES = {
    "current schema": document("Priced", {"sku": "tea", "price": Decimal("2.5")}, schema_version=2),
    "upcast from v1": document("Priced", {"sku": "tea", "cents": 250}),
    "renamed type, no metadata": {
        **document("note.added", {"text": "hi"}),
        "metadata": None,
    },
    "naive payload datetime": document("note.added", {"text": "hi", "at": datetime(2024, 1, 1)}),
    "foreign zone occurred_at": document(
        "note.added",
        {"text": "hi"},
        occurred_at=datetime(2024, 1, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
    ),
    "own model_validate": document("Audited", {"who": "ada"}),
    "unknown type": document("Refunded", {"amount": 1}),
    "schema newer than class": document("Priced", {"sku": "tea"}, schema_version=3),
    "missing payload field": document("Priced", {"sku": "tea"}, schema_version=2),
    "wrong payload type": document("Priced", {"sku": "tea", "price": "cheap"}, schema_version=2),
    "extra payload field": document("note.added", {"text": "hi", "mood": "good"}),
    "bad event id": document("note.added", {"text": "hi"}, _id="not-a-uuid"),
    "payload shadows the envelope": document("note.added", {"text": "hi", "event_id": 5}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_decoder_returns_or_raises_what_the_stored_event_path_does(case: str) -> None:
    fast, reference = both_ways(CASES[case])
    if isinstance(reference, Exception):
        assert type(fast) is type(reference)
        assert str(fast) == str(reference)
        assert fast.__dict__ == reference.__dict__
    else:
        assert type(fast) is type(reference)
        assert fast == reference


def test_an_invalid_payload_names_the_event_type_stream_version_and_field() -> None:
    stored = document("Priced", {"sku": "tea", "price": "cheap"}, schema_version=2)
    with pytest.raises(EventDecodingError) as caught:
        document_decoder(registry())(stored)
    error = caught.value
    assert (error.stream_id, error.version, error.field) == ("cart-1", 4, "payload.price")
    assert "Priced does not validate" in str(error)
    assert "Cart 'cart-1', version 4" in str(error)


def test_upcasters_run_and_the_stored_payload_is_left_alone() -> None:
    stored = document("Priced", {"sku": "tea", "cents": 250})
    event = document_decoder(registry())(stored)
    assert isinstance(event, Priced)
    assert event.price == Decimal("2.5")
    assert stored["payload"] == {"sku": "tea", "cents": 250}


def test_the_envelope_is_restored() -> None:
    stored = document("note.added", {"text": "hi"})
    event = document_decoder(registry())(stored)
    assert isinstance(event, Noted)
    assert (event.aggregate_id, event.correlation_id, event.causation_id) == (
        "cart-1",
        "corr-1",
        "cmd-1",
    )
    assert event.event_id == stored["_id"]
    assert isinstance(event.event_id, UUID)


def test_a_class_overriding_model_validate_is_validated_through_it() -> None:
    before = Audited.calls
    document_decoder(registry())(document("Audited", {"who": "ada"}))
    assert Audited.calls == before + 1


def test_a_missing_upcaster_is_still_a_configuration_error() -> None:
    class Later(DomainEvent):
        schema_version: ClassVar[int] = 2

    decode = document_decoder(EventRegistry([Later]))
    with pytest.raises(ConfigurationError, match="no upcaster from schema version 1"):
        decode(document("Later", {}))


def test_an_unknown_type_is_still_an_error_after_a_known_one() -> None:
    decode = document_decoder(registry())
    decode(document("note.added", {"text": "hi"}))
    with pytest.raises(UnknownEventTypeError, match="'Refunded'"):
        decode(document("Refunded", {}))


@pytest.mark.parametrize(
    "changes",
    [
        {"payload": "text"},
        {"stream_id": {"tenant": 1}},
        {"version": "3"},
        {"version": 0},
        {"version": True},
        {"stream_type": 7},
        {"event_type": None},
        {"schema_version": "1"},
        {"occurred_at": "2024-01-01"},
    ],
)
def test_a_document_event_from_document_refuses_is_not_plainly_well_formed(
    changes: dict[str, Any],
) -> None:
    stored = {**document("note.added", {"text": "hi"}), **changes}
    assert not is_plainly_well_formed(stored)
    with pytest.raises(EventDecodingError):
        event_from_document(stored)


@pytest.mark.parametrize("field", ["_id", "stream_id", "payload", "occurred_at", "version"])
def test_a_document_missing_a_field_is_not_plainly_well_formed(field: str) -> None:
    stored = document("note.added", {"text": "hi"})
    del stored[field]
    assert not is_plainly_well_formed(stored)


def test_every_event_the_store_writes_is_plainly_well_formed() -> None:
    assert is_plainly_well_formed(document("note.added", {"text": "hi"}))
    assert is_plainly_well_formed({**document("note.added", {}), "schema_version": 1})
    without_schema = document("note.added", {"text": "hi"})
    del without_schema["schema_version"]  # written before schema versions existed
    assert is_plainly_well_formed(without_schema)
