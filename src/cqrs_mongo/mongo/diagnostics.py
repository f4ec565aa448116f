"""What a deployment offers this package, for the operator's ``cqrs-mongo doctor``.

Server version, deployment type, whether transactions and change streams work, the oplog
window (how long a stopped projection may stay stopped before its checkpoint leaves the oplog)
and the declared indexes that are missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.eventsourcing.event_store import STREAM_VERSION_INDEX
from cqrs_mongo.mongo.indexes import index_models


@dataclass(frozen=True, slots=True)
class MissingIndex:
    """A declared index the database does not have (by name)."""

    collection: str
    name: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """What :func:`diagnose` found.

    Attributes:
        server_version: the server's ``buildInfo.version``.
        topology: ``replica_set``, ``sharded`` or ``standalone``.
        transactions: multi-document transactions are available.
        change_streams: a change stream could be opened on the database.
        oplog_window_seconds: seconds between the oldest and newest oplog entries; ``None``
            when the oplog cannot be read (a standalone, mongos, or a user without access).
        missing_indexes: declared indexes that do not exist; empty if no database was given.
        notes: why something could not be found out.
    """

    server_version: str
    topology: str
    transactions: bool
    change_streams: bool
    oplog_window_seconds: float | None
    missing_indexes: tuple[MissingIndex, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        """Transactions and change streams work and no declared index is missing."""
        return self.transactions and self.change_streams and not self.missing_indexes


async def diagnose(
    client: Any,
    database_name: str | None = None,
    handlers: Iterable[Any] = (),
    events_collection: str | None = "events",
) -> Diagnosis:
    """Ask the deployment behind ``client`` what it supports.

    Args:
        client: a pymongo async client.
        database_name: the application's database, to look for missing indexes and try a
            change stream on; the ``admin`` database when omitted.
        handlers: handler classes whose declared indexes must exist.
        events_collection: the events collection whose unique index must exist (``None``
            when the application has no event-sourced streams).

    Raises:
        PyMongoError: the server cannot be reached.
    """
    notes: list[str] = []
    info = await client.admin.command("buildInfo")
    caps = await driver.capabilities(client)
    database = driver.get_database(client, database_name or "admin")
    streams = await _change_streams(database, caps.transactions, notes)
    window = await _oplog_window(client, caps.topology, notes)
    missing: tuple[MissingIndex, ...] = ()
    if database_name is not None:
        missing = await _missing_indexes(database, handlers, events_collection)
    return Diagnosis(
        str(info.get("version", "unknown")),
        caps.topology,
        caps.transactions,
        streams,
        window,
        missing,
        tuple(notes),
    )


async def _change_streams(database: Any, replicated: bool, notes: list[str]) -> bool:
    if not replicated:
        notes.append("change streams need a replica set or sharded cluster")
        return False
    try:
        stream = await database.watch(max_await_time_ms=1)
        await stream.close()
    except PyMongoError as exc:
        notes.append(f"change stream refused: {exc}")
        return False
    return True


async def _oplog_window(client: Any, topology: str, notes: list[str]) -> float | None:
    if topology != "replica_set":
        notes.append(f"no oplog to measure on a {topology} deployment")
        return None
    oplog = client["local"]["oplog.rs"]
    try:
        first = await oplog.find_one({}, {"ts": 1}, sort=[("$natural", 1)])
        last = await oplog.find_one({}, {"ts": 1}, sort=[("$natural", -1)])
    except OperationFailure as exc:
        notes.append(f"oplog not readable: {exc.details.get('errmsg') if exc.details else exc}")
        return None
    if first is None or last is None:
        notes.append("the oplog is empty")
        return None
    return float(last["ts"].time - first["ts"].time)


async def _missing_indexes(
    database: Any, handlers: Iterable[Any], events_collection: str | None
) -> tuple[MissingIndex, ...]:
    wanted: dict[str, set[str]] = {}
    for handler in handlers:
        collection, models = index_models(handler)
        if models:
            wanted.setdefault(collection, set()).update(m.document["name"] for m in models)
    if events_collection is not None:
        wanted.setdefault(events_collection, set()).add(STREAM_VERSION_INDEX.document["name"])
    missing: list[MissingIndex] = []
    for collection, names in sorted(wanted.items()):
        existing = {index["name"] async for index in await database[collection].list_indexes()}
        missing.extend(MissingIndex(collection, name) for name in sorted(names - existing))
    return tuple(missing)
