"""Aggregates and events: applying, pending events, types that must survive storage."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from cqrs_mongo import AggregateRoot, DomainEvent
from cqrs_mongo.errors import MissingEventHandlerError


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


class AccountOpened(DomainEvent):
    owner: str
    limit: Decimal
    tier: Tier
    ref: UUID


class AccountRenamed(DomainEvent):
    owner: str


class Unhandled(DomainEvent):
    pass


class Account(AggregateRoot[str]):
    owner: str
    limit: Decimal = Decimal("0")
    tier: Tier = Tier.SILVER
    ref: UUID | None = None
    opened_at: datetime | None = None

    def apply_AccountOpened(self, event: AccountOpened) -> None:
        self.owner = event.owner
        self.limit = event.limit
        self.tier = event.tier
        self.ref = event.ref
        self.opened_at = event.occurred_at

    def apply_AccountRenamed(self, event: AccountRenamed) -> None:
        self.owner = event.owner


def opened() -> AccountOpened:
    return AccountOpened(owner="ada", limit=Decimal("10.50"), tier=Tier.GOLD, ref=uuid4())


def test_add_event_applies_and_records_pending_with_aggregate_id() -> None:
    account = Account.blank("acc-1")
    assert isinstance(account, Account)
    account.add_event(opened())
    account.add_event(AccountRenamed(owner="grace"))

    assert account.owner == "grace"
    assert account.limit == Decimal("10.50")
    assert [type(e).__name__ for e in account.pending_events] == [
        "AccountOpened",
        "AccountRenamed",
    ]
    assert all(e.aggregate_id == "acc-1" for e in account.pending_events)
    assert account.version == 0


def test_missing_apply_method_is_an_error_naming_it() -> None:
    account = Account(id="acc-1", owner="ada")
    with pytest.raises(MissingEventHandlerError, match="apply_Unhandled"):
        account.add_event(Unhandled())
    assert account.pending_events == ()


def test_clear_only_the_persisted_events_and_restore_after_rollback() -> None:
    account = Account(id="acc-1", owner="ada")
    account.add_event(AccountRenamed(owner="b"))
    first = account.pending_events
    account.add_event(AccountRenamed(owner="c"))
    account.clear_pending_events(first)
    assert [e.owner for e in account.pending_events] == ["c"]  # type: ignore[attr-defined]
    account.restore_pending_events(first)
    assert [e.owner for e in account.pending_events] == ["b", "c"]  # type: ignore[attr-defined]


def test_pending_events_of_every_kind_of_instance() -> None:
    # Pending events live in pydantic's private store: an aggregate made without validation
    # (as loads rebuild them) or copied has them too, and clearing a copy's persisted events
    # leaves the original's alone.
    blank = Account.blank("acc-2")
    blank.add_event(AccountRenamed(owner="b"))
    assert [e.owner for e in blank.pending_events] == ["b"]  # type: ignore[attr-defined]
    account = Account(id="acc-1", owner="ada")
    account.add_event(AccountRenamed(owner="b"))
    copy = account.model_copy()
    copy.clear_pending_events(copy.pending_events)
    assert copy.pending_events == ()
    assert [e.owner for e in account.pending_events] == ["b"]  # type: ignore[attr-defined]


def test_event_envelope_is_utc_aware_and_typed() -> None:
    event = opened()
    assert event.occurred_at.tzinfo is not None
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.event_type == "AccountOpened"
    assert event.schema_version == 1
    assert isinstance(event.event_id, UUID)
    assert set(event.payload()) == {"owner", "limit", "tier", "ref"}


def test_naive_and_foreign_zone_datetimes_become_utc() -> None:
    naive = AccountRenamed(owner="x", occurred_at=datetime(2026, 1, 1, 12, 0))
    assert naive.occurred_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    shifted = AccountRenamed(owner="x", occurred_at=datetime(2026, 1, 1, 14, 0, tzinfo=plus_two))
    assert shifted.occurred_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert shifted.occurred_at.tzinfo == UTC


def test_events_are_immutable() -> None:
    event = opened()
    with pytest.raises(Exception, match="frozen"):
        event.owner = "mallory"  # type: ignore[misc]


def test_aggregate_round_trips_through_json_with_version() -> None:
    account = Account.blank("acc-1")
    account.add_event(opened())
    account.version = 7
    again = Account.model_validate_json(account.model_dump_json())
    assert again.model_dump() == account.model_dump()
    assert again.version == 7
    assert again.tier is Tier.GOLD
    assert again.pending_events == ()


def test_event_type_can_be_renamed_explicitly() -> None:
    class LegacyNamed(DomainEvent):
        event_type = "order.created.v0"

    assert LegacyNamed().event_type == "order.created.v0"


def test_event_datetimes_are_cut_to_bson_milliseconds() -> None:
    class Shipped(DomainEvent):
        shipped_at: datetime

    precise = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    event = Shipped(shipped_at=precise, occurred_at=precise)
    assert event.shipped_at == datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert event.occurred_at == event.shipped_at
