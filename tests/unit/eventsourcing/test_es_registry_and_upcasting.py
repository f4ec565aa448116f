"""Event registry and upcaster chain: type names to classes, old payloads to today's shape."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import uuid4

import pytest

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import ConfigurationError, UnknownEventTypeError
from cqrs_mongo.eventsourcing import EventRegistry, StoredEvent, UpcasterChain


class ItemAdded(DomainEvent):
    schema_version: ClassVar[int] = 3
    sku: str
    quantity: int
    unit_price: Decimal


class CartOpened(DomainEvent):
    event_type: ClassVar[str] = "cart.opened"
    owner: str


class Cart(AggregateRoot[str]):
    owner: str = ""
    lines: int = 0

    def apply_CartOpened(self, event: CartOpened) -> None:
        self.owner = event.owner

    def apply_ItemAdded(self, event: ItemAdded) -> None:
        self.lines += 1


def stored(event_type: str, schema_version: int, payload: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        stream_id="cart-1",
        stream_type="Cart",
        version=1,
        event_type=event_type,
        schema_version=schema_version,
        payload=payload,
        event_id=uuid4(),
        occurred_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        correlation_id="corr-1",
        causation_id="cmd-1",
    )


def item_added_chain() -> UpcasterChain:
    chain = UpcasterChain()

    @chain.register("ItemAdded", from_version=1)
    def quantity_defaults_to_one(payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "quantity": 1}

    @chain.register("ItemAdded", from_version=2)
    def price_in_cents_to_decimal(payload: dict[str, Any]) -> dict[str, Any]:
        cents = payload.pop("price_cents")
        return {**payload, "unit_price": Decimal(cents) / 100}

    return chain


def test_for_aggregate_finds_the_classes_of_its_apply_methods() -> None:
    registry = EventRegistry.for_aggregate(Cart)

    assert registry.resolve("cart.opened") is CartOpened
    assert registry.resolve("ItemAdded") is ItemAdded


def test_unknown_type_is_an_error_not_a_silent_drop() -> None:
    registry = EventRegistry([CartOpened])

    with pytest.raises(UnknownEventTypeError, match="'CartClosed'"):
        registry.to_event(stored("CartClosed", 1, {}))


def test_a_schema_version_newer_than_the_class_is_unknown() -> None:
    registry = EventRegistry([CartOpened])

    with pytest.raises(UnknownEventTypeError, match="schema version 2"):
        registry.to_event(stored("cart.opened", 2, {"owner": "ada"}))


def test_two_classes_cannot_share_a_type_name() -> None:
    class Impostor(DomainEvent):
        event_type: ClassVar[str] = "cart.opened"

    registry = EventRegistry([CartOpened])

    with pytest.raises(ConfigurationError, match="already registered to CartOpened"):
        registry.register(Impostor)


def test_to_event_restores_envelope_and_payload() -> None:
    registry = EventRegistry([CartOpened])
    record = stored("cart.opened", 1, {"owner": "ada"})

    event = registry.to_event(record)

    assert isinstance(event, CartOpened)
    assert event.owner == "ada"
    assert event.aggregate_id == "cart-1"
    assert event.event_id == record.event_id
    assert event.occurred_at == record.occurred_at
    assert (event.correlation_id, event.causation_id) == ("corr-1", "cmd-1")


def test_v1_payload_is_lifted_through_v2_to_v3() -> None:
    registry = EventRegistry([ItemAdded], upcasters=item_added_chain())
    record = stored("ItemAdded", 1, {"sku": "tea", "price_cents": 450})

    event = registry.to_event(record)

    assert isinstance(event, ItemAdded)
    assert (event.sku, event.quantity, event.unit_price) == ("tea", 1, Decimal("4.5"))
    assert record.payload == {"sku": "tea", "price_cents": 450}, "stored payload changed"


def test_v2_payload_takes_only_the_last_step() -> None:
    registry = EventRegistry([ItemAdded], upcasters=item_added_chain())

    event = registry.to_event(
        stored("ItemAdded", 2, {"sku": "tea", "quantity": 3, "price_cents": 5})
    )

    assert isinstance(event, ItemAdded)
    assert (event.quantity, event.unit_price) == (3, Decimal("0.05"))


def test_a_gap_in_the_chain_names_the_missing_step() -> None:
    chain = UpcasterChain()
    chain.register("ItemAdded", 1, lambda payload: {**payload, "quantity": 1})
    registry = EventRegistry([ItemAdded], upcasters=chain)

    with pytest.raises(ConfigurationError, match="no upcaster from schema version 2 to 3"):
        registry.to_event(stored("ItemAdded", 1, {"sku": "tea", "price_cents": 1}))


def test_a_step_cannot_be_registered_twice() -> None:
    chain = item_added_chain()

    with pytest.raises(ConfigurationError, match="from schema version 1 is already registered"):
        chain.register("ItemAdded", 1, lambda payload: payload)


def test_current_payload_is_not_upcast() -> None:
    calls: list[int] = []
    chain = UpcasterChain()
    chain.register("cart.opened", 1, lambda payload: calls.append(1) or payload)
    registry = EventRegistry([CartOpened], upcasters=chain)

    registry.to_event(stored("cart.opened", 1, {"owner": "ada"}))

    assert calls == []


class Tagged(DomainEvent):
    tag: str

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Tagged:
        # A class that normalises what it reads: the registry must go through this.
        return super().model_validate({**obj, "tag": str(obj["tag"]).lower()}, **kwargs)


def test_a_class_overriding_model_validate_is_decoded_through_it() -> None:
    event = EventRegistry([Tagged]).to_event(stored("Tagged", 1, {"tag": "URGENT"}))

    assert isinstance(event, Tagged)
    assert event.tag == "urgent"
