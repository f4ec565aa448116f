"""EveryNEvents: snapshot when an append crosses a multiple of n."""

from __future__ import annotations

import pytest

from cqrs_mongo.eventsourcing import EveryNEvents


@pytest.mark.parametrize(
    ("previous", "new", "expected"),
    [
        (0, 1, False),
        (0, 9, False),
        (9, 10, True),
        (8, 13, True),
        (10, 11, False),
        (0, 25, True),
        (19, 20, True),
    ],
)
def test_snapshots_when_a_multiple_of_n_is_crossed(previous: int, new: int, expected: bool) -> None:
    assert EveryNEvents(10).should_snapshot(None, previous, new) is expected


@pytest.mark.parametrize("n", [0, -3, True, 2.5])
def test_n_must_be_a_positive_int(n: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        EveryNEvents(n)  # type: ignore[arg-type]
