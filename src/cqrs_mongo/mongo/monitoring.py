"""CommandCounter: counts the database commands a piece of code sends (round trips)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from pymongo import monitoring

# Connection handshakes and monitoring are the driver's business, not the code under test's.
IGNORED_COMMANDS = frozenset(
    {
        "hello",
        "ismaster",
        "isMaster",
        "saslStart",
        "saslContinue",
        "ping",
        "buildinfo",
        "buildInfo",
        "endSessions",
        "killCursors",
    }
)


class CommandCounter(monitoring.CommandListener):
    """A ``pymongo.monitoring.CommandListener`` counting commands by name.

    Pass it to the client (``AsyncMongoClient(uri, event_listeners=[counter])``), then
    measure a block with :meth:`measure`.

    Example:
        >>> counter = CommandCounter()
        >>> with counter.measure() as counts:
        ...     pass  # run code against a client that has `counter` as a listener
        >>> sum(counts.values())
        0
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.commands: list[tuple[str, str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in IGNORED_COMMANDS:
            return
        with self._lock:
            self.counts[event.command_name] += 1
            self.commands.append((event.command_name, event.database_name))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None

    @property
    def total(self) -> int:
        """How many commands were counted since the last reset."""
        return sum(self.counts.values())

    def reset(self) -> None:
        """Forget every counted command."""
        with self._lock:
            self.counts.clear()
            self.commands.clear()

    @contextmanager
    def measure(self) -> Iterator[Counter[str]]:
        """Count only the commands sent inside the block; yields the live counter."""
        self.reset()
        yield self.counts
