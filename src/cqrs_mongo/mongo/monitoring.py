"""Command monitoring: CommandCounter (round trips) and the forwarder instrumentors subscribe to."""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from bson import json_util
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


# Commands whose bodies are credentials: never described to an observer.
SENSITIVE_COMMANDS = frozenset(
    {"authenticate", "saslStart", "saslContinue", "getnonce", "createUser", "updateUser"}
)

# The array of a write command whose length is its batch size.
_BATCH_FIELDS = {"insert": "documents", "update": "updates", "delete": "deletes"}

QUERY_TEXT_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class StartedCommand:
    """A command as it leaves the client, described without driver types.

    Attributes:
        key: identifies the command until it finishes (connection and request id).
        operation: the command name (``find``, ``insert``, ``commitTransaction``...).
        database: the database it runs against.
        collection: the collection it is about, ``None`` for database-level commands.
        batch_size: how many operations a multi-document write carries (2 or more only).
        server_address: the host the connection is to.
        server_port: the port the connection is to.
    """

    key: tuple[Any, int]
    operation: str
    database: str
    collection: str | None
    batch_size: int | None
    server_address: str | None
    server_port: int | None
    document: Mapping[str, Any]

    def query_text(self) -> str:
        """The command as extended JSON, cut to ``QUERY_TEXT_LIMIT`` characters (opt-in only)."""
        return json_util.dumps(self.document)[:QUERY_TEXT_LIMIT]


@dataclass(frozen=True, slots=True)
class FinishedCommand:
    """How a command ended.

    Attributes:
        key: the :attr:`StartedCommand.key` of the command.
        duration: seconds, as the driver measured the round trip.
        status_code: the server's error code, as a string, when it failed (a command reply
            with write errors counts as failed: the caller gets an error).
        error_type: the code, or the client-side exception's class name, when it failed.
    """

    key: tuple[Any, int]
    duration: float
    status_code: str | None = None
    error_type: str | None = None


class CommandObserver(Protocol):
    """What an instrumentor subscribes to :data:`COMMAND_FORWARDER`."""

    def command_started(self, command: StartedCommand) -> None:
        """A command was sent."""
        ...

    def command_finished(self, command: FinishedCommand) -> None:
        """A command's reply (or failure) arrived."""
        ...


def describe_started(event: monitoring.CommandStartedEvent) -> StartedCommand:
    """The driver-neutral description of ``event``."""
    name = event.command_name
    document = event.command
    target = document.get(name)
    collection = target if isinstance(target, str) else None
    if name == "getMore":
        collection = document.get("collection")
    batch_size = None
    batch_field = _BATCH_FIELDS.get(name)
    if batch_field is not None:
        size = len(document.get(batch_field) or ())
        # The conventions count a batch only from two operations up.
        batch_size = size if size >= 2 else None
    address: tuple[Any, ...] = tuple(event.connection_id or ())
    host = str(address[0]) if address else None
    port = int(address[1]) if len(address) > 1 and address[1] is not None else None
    return StartedCommand(
        (event.connection_id, event.request_id),
        name,
        event.database_name,
        collection,
        batch_size,
        host,
        port,
        document,
    )


def describe_succeeded(event: monitoring.CommandSucceededEvent) -> FinishedCommand:
    """How ``event``'s command ended; write errors in the reply make it a failure."""
    key = (event.connection_id, event.request_id)
    duration = event.duration_micros / 1_000_000
    reply = event.reply
    errors = reply.get("writeErrors") if isinstance(reply, Mapping) else None
    problem = errors[0] if errors else (reply.get("writeConcernError") if reply else None)
    if isinstance(problem, Mapping) and problem.get("code") is not None:
        code = str(problem["code"])
        return FinishedCommand(key, duration, code, code)
    return FinishedCommand(key, duration)


def describe_failed(event: monitoring.CommandFailedEvent) -> FinishedCommand:
    """How ``event``'s command failed: the server's code, or the client error's class."""
    key = (event.connection_id, event.request_id)
    duration = event.duration_micros / 1_000_000
    failure = event.failure if isinstance(event.failure, Mapping) else {}
    code = failure.get("code")
    if code is not None:
        return FinishedCommand(key, duration, str(code), str(code))
    return FinishedCommand(key, duration, None, str(failure.get("errtype") or "_OTHER"))


class CommandForwarder(monitoring.CommandListener):
    """One listener on every client :func:`~cqrs_mongo.mongo.create_client` makes.

    pymongo fixes a client's listeners when the client is made, so a tracer switched on later
    could never see the commands of clients that already exist. Each client therefore gets
    this forwarder; it describes commands to the observers subscribed at the time.

    While no observer is subscribed, a client whose only command listener is this forwarder
    has pymongo's command events switched off (:meth:`attach`): pymongo builds a started and
    a succeeded event for every command as soon as any command listener exists, about 15%
    of the client CPU of a one-document insert, for events nobody would read. They are
    switched on again, for every such client, when an observer subscribes.
    """

    def __init__(self) -> None:
        self._targets: tuple[CommandObserver, ...] = ()
        self._switches: weakref.WeakSet[Any] = weakref.WeakSet()

    def subscribe(self, observer: CommandObserver) -> None:
        """Describe every command to ``observer`` from now on."""
        if observer not in self._targets:
            self._targets = (*self._targets, observer)
        self._publish(True)

    def unsubscribe(self, observer: CommandObserver) -> None:
        """Stop describing commands to ``observer``; one never subscribed is ignored."""
        self._targets = tuple(target for target in self._targets if target is not observer)
        self._publish(bool(self._targets))

    def attach(self, client: Any) -> None:
        """Let ``client`` publish command events only while an observer is subscribed.

        Only for a client whose one command listener is this forwarder; any other client
        (one with a listener of its own, a driver without the switch) is left as it is,
        publishing every event.
        """
        listeners = getattr(client, "_event_listeners", None)
        if listeners is None or not hasattr(listeners, _PUBLISH_SWITCH):
            return
        commands = [
            listener
            for listener in listeners.event_listeners()
            if isinstance(listener, monitoring.CommandListener)
        ]
        if commands != [self]:
            return
        self._switches.add(listeners)
        setattr(listeners, _PUBLISH_SWITCH, bool(self._targets))

    def _publish(self, on: bool) -> None:
        for listeners in list(self._switches):
            setattr(listeners, _PUBLISH_SWITCH, on)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self._targets or event.command_name in SENSITIVE_COMMANDS:
            return
        command = describe_started(event)
        for target in self._targets:
            target.command_started(command)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if not self._targets or event.command_name in SENSITIVE_COMMANDS:
            return
        finished = describe_succeeded(event)
        for target in self._targets:
            target.command_finished(finished)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if not self._targets or event.command_name in SENSITIVE_COMMANDS:
            return
        finished = describe_failed(event)
        for target in self._targets:
            target.command_finished(finished)


# pymongo's per-client flag (``_EventListeners.enabled_for_commands``), read when each
# command starts: with it off, no command event is built.
_PUBLISH_SWITCH = "_EventListeners__enabled_for_commands"

COMMAND_FORWARDER = CommandForwarder()
"""The forwarder every client made by ``create_client`` carries."""
