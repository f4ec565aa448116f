"""DomainEvent datetimes: every top-level datetime is made aware UTC at BSON's milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import Field

from cqrs_mongo import DomainEvent


def test_every_top_level_datetime_is_normalised_whatever_the_field_type() -> None:
    # The normalisation is one check of the validated event: it must still reach datetimes in
    # optional, Any-typed and envelope fields, and leave everything else untouched.
    class Scheduled(DomainEvent):
        due: datetime | None = None
        anything: object = None
        when: list[datetime] = Field(default_factory=list)
        label: str = ""

    plus_two = timezone(timedelta(hours=2))
    event = Scheduled(
        due=datetime(2026, 1, 1, 14, 0, 0, 999999, tzinfo=plus_two),
        anything=datetime(2026, 1, 1, 12, 0, 0, 1500),
        aggregate_id=datetime(2026, 1, 1, 12, 0),
        label="2026-01-01T12:00:00",
    )
    assert event.due == datetime(2026, 1, 1, 12, 0, 0, 999000, tzinfo=UTC)
    assert event.due is not None
    assert event.due.tzinfo is UTC
    assert event.anything == datetime(2026, 1, 1, 12, 0, 0, 1000, tzinfo=UTC)
    assert event.aggregate_id == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert event.label == "2026-01-01T12:00:00"
    assert Scheduled(when=[datetime(2026, 1, 1)]).when == [datetime(2026, 1, 1)]  # top level only
    with pytest.raises(Exception, match="frozen"):
        event.due = None  # type: ignore[misc]


def test_a_datetime_default_is_normalised_like_a_given_one() -> None:
    class Dated(DomainEvent):
        at: datetime = datetime(2026, 1, 1, 12, 0, 0, 123456)

    event = Dated()
    assert event.at == datetime(2026, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert event == Dated.model_validate(event.model_dump())  # equal after a round trip
