"""The projection worker's life as an explicit state machine, and the numbers it reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cqrs_mongo.errors import ProjectionError


class WorkerState(enum.Enum):
    """Where a projection worker is in its life."""

    STOPPED = "stopped"
    RUNNING = "running"
    STOPPING = "stopping"


_ALLOWED: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.STOPPED: frozenset({WorkerState.RUNNING}),
    WorkerState.RUNNING: frozenset({WorkerState.STOPPING}),
    WorkerState.STOPPING: frozenset({WorkerState.STOPPED}),
}


class WorkerLifecycle:
    """Holds a worker's state and refuses illegal transitions.

    Example:
        >>> life = WorkerLifecycle("order_summaries")
        >>> life.move_to(WorkerState.RUNNING)
        >>> life.state.value
        'running'
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = WorkerState.STOPPED

    def move_to(self, state: WorkerState) -> None:
        """Enter ``state``.

        Raises:
            ProjectionError: ``state`` cannot follow the current state.
        """
        if state not in _ALLOWED[self.state]:
            raise ProjectionError(
                f"Projection worker {self.name!r}: cannot go from {self.state.value} "
                f"to {state.value}."
            )
        self.state = state


@dataclass(frozen=True, slots=True)
class Lag:
    """How far a projection is behind its events.

    Attributes:
        events: events committed but not yet applied (counted up to a cap).
        seconds: age of the oldest such event (0.0 when caught up).
        capped: whether counting stopped at the cap (there may be more).
    """

    events: int
    seconds: float
    capped: bool = False

    @property
    def caught_up(self) -> bool:
        """Whether nothing is waiting."""
        return self.events == 0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failing event is retried before it is parked.

    Attributes:
        max_attempts: attempts in all, the first included; then the event is parked.
        base_delay: seconds before the second attempt; doubled for each further one.
        max_delay: the longest pause between two attempts.
    """

    max_attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (from 1)."""
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


StatusState = Literal["streaming", "catching_up", "standby", "stopped", "failed"]


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """What a projection worker reports about itself, for operators and health checks.

    Attributes:
        name: the projection's name.
        state: ``streaming`` (following the change stream), ``catching_up`` (reading the
            events collection), ``standby`` (running, but another worker holds the lease),
            ``stopped``, or ``failed`` (the worker's loop task died; ``last_error`` says why).
        lag_events: events committed but not applied yet (``None`` when it could not be
            counted).
        lag_seconds: age of the oldest such event (``None`` when unknown).
        checkpoint_age_seconds: time since the checkpoint last moved (``None``: never).
        parked: how many events are parked for the projection's collection.
        last_error: the last failure of the worker's loop, one line, or ``None``.
        lease_owner: the worker holding the projection's lease (``None``: nobody).
        lease_expires_at: when that lease runs out unless renewed, UTC.
    """

    name: str
    state: StatusState
    lag_events: int | None
    lag_seconds: float | None
    checkpoint_age_seconds: float | None
    parked: int
    last_error: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
