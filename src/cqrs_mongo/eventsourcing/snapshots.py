"""Snapshots: an aggregate's state at one version, and strategies deciding when to take one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cqrs_mongo.domain import utc_now


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An aggregate's state after ``version`` events of its stream.

    Attributes:
        stream_id: the aggregate id.
        stream_type: the stream's kind (the aggregate class name by default).
        version: the last event version the state includes.
        schema_version: the shape of ``state``; a snapshot whose shape differs from what the
            repository expects today is ignored and the stream is replayed instead.
        state: the aggregate's fields as plain values.
        taken_at: when the snapshot was taken.
    """

    stream_id: Any
    stream_type: str
    version: int
    schema_version: int
    state: dict[str, Any]
    taken_at: datetime

    @classmethod
    def of(
        cls, stream_id: Any, stream_type: str, version: int, schema_version: int, state: Any
    ) -> Snapshot:
        """A snapshot taken now."""
        return cls(stream_id, stream_type, version, schema_version, dict(state), utc_now())


class SnapshotStrategy(Protocol):
    """Decides, after an append, whether the aggregate's new state is worth a snapshot."""

    def should_snapshot(self, aggregate: Any, previous_version: int, new_version: int) -> bool:
        """Whether to snapshot ``aggregate`` now that it moved from one version to another."""
        ...


class EveryNEvents:
    """Snapshot whenever an append crosses a multiple of ``n`` (versions n, 2n, 3n, ...).

    An append of several events that jumps over a multiple still takes one snapshot, at the
    new version.

    Example:
        >>> strategy = EveryNEvents(10)
        >>> strategy.should_snapshot(None, 8, 11), strategy.should_snapshot(None, 11, 12)
        (True, False)
    """

    def __init__(self, n: int) -> None:
        """Create the strategy.

        Raises:
            ValueError: ``n`` is not a positive int.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"EveryNEvents needs a positive int, got {n!r}.")
        self.n = n

    def should_snapshot(self, aggregate: Any, previous_version: int, new_version: int) -> bool:
        """True when ``(previous_version, new_version]`` contains a multiple of ``n``."""
        return new_version // self.n > previous_version // self.n

    def __repr__(self) -> str:
        return f"EveryNEvents({self.n})"
