"""CircuitBreaker: after a cache failure, skip the cache for a cool-down, then probe once."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    """Where the breaker is: calls pass (closed), are skipped (open), or one probes (half-open)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed -> open on a failure; open -> half-open after ``cooldown``; one probe decides.

    While open, :meth:`allow` says no without touching the network, so an outage costs each
    caller nothing after the first failure. After ``cooldown`` seconds one caller is let
    through as a probe: its success closes the breaker, its failure opens it for another
    cool-down. A probe that never reports (its task was cancelled) is replaced after another
    ``cooldown``.

    Example:
        >>> now = [0.0]
        >>> breaker = CircuitBreaker(cooldown=5.0, clock=lambda: now[0])
        >>> breaker.record_failure(), breaker.allow()
        (True, False)
        >>> now[0] = 5.0
        >>> breaker.allow(), breaker.allow(), breaker.record_success()
        (True, False, True)
    """

    def __init__(self, cooldown: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        if cooldown <= 0:
            raise ValueError(f"Circuit breaker cooldown must be positive, got {cooldown!r}.")
        self.cooldown = cooldown
        self.clock = clock
        self.state = BreakerState.CLOSED
        self._since = 0.0
        self.opened_at: float | None = None

    def allow(self) -> bool:
        """Whether a call may go to the cache now (the caller must then report its outcome)."""
        if self.state is BreakerState.CLOSED:
            return True
        now = self.clock()
        if now - self._since < self.cooldown:
            return False
        self.state = BreakerState.HALF_OPEN
        self._since = now
        return True

    def record_success(self) -> bool:
        """Close the breaker; returns whether this ended an outage."""
        recovered = self.state is not BreakerState.CLOSED
        self.state = BreakerState.CLOSED
        self.opened_at = None
        return recovered

    def record_failure(self) -> bool:
        """Open the breaker for a cool-down; returns whether this began a new outage."""
        now = self.clock()
        began = self.state is BreakerState.CLOSED
        if began:
            self.opened_at = now
        self.state = BreakerState.OPEN
        self._since = now
        return began
