"""``cqrs-mongo streams show STREAM_ID``: a stream's events as stored, and as the app reads them."""

from __future__ import annotations

import json
import uuid
from typing import Any

import click

from cqrs_mongo.cli.main import (
    Session,
    app_option,
    cli,
    json_option,
    open_app,
    pass_session,
    uri_option,
)
from cqrs_mongo.cli.output import EXIT_OK, console, emit_json, table
from cqrs_mongo.errors import NotFoundError
from cqrs_mongo.eventsourcing import EventRegistry, StoredEvent
from cqrs_mongo.mongo import MongoEventStore

ID_TYPES = {"str": str, "int": int, "uuid": uuid.UUID}


@cli.group()
def streams() -> None:
    """Event streams."""


@streams.command("show")
@click.argument("stream_id")
@click.option(
    "--id-type",
    type=click.Choice(sorted(ID_TYPES)),
    default="str",
    show_default=True,
    help="How to read STREAM_ID.",
)
@app_option()
@uri_option
@json_option
@pass_session
def streams_show(
    session: Session, stream_id: str, id_type: str, app_spec: str, uri: str | None, as_json: bool
) -> None:
    """The events of STREAM_ID: version, type, schema version, occurred_at, payload, and the
    upcast view (the payload at the class's current schema, through the app's event registry).
    """

    async def work() -> int:
        wanted = ID_TYPES[id_type](stream_id)
        async with open_app(app_spec, uri) as opened:
            store = MongoEventStore(opened.database, opened.app.events_collection)
            events = await store.read_stream(wanted)
            registry = opened.app.event_registry
        if not events:
            raise NotFoundError("Stream", wanted)
        described = [_describe(event, registry) for event in events]
        if as_json:
            emit_json(described)
            return EXIT_OK
        columns = ["version", "type", "schema", "occurred at", "payload", "upcast"]
        rows = [_row(each) for each in described]
        console().print(table(f"stream {wanted!r} ({events[0].stream_type})", columns, rows))
        return EXIT_OK

    session.run(work)


def _describe(event: StoredEvent, registry: EventRegistry | None) -> dict[str, Any]:
    upcast: dict[str, Any] | None = None
    if registry is not None:
        try:
            decoded = registry.to_event(event)
            upcast = {"schema_version": type(decoded).schema_version, "payload": decoded.payload()}
        except Exception as exc:  # shown, not fatal: that is what an operator looks for
            upcast = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "version": event.version,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "occurred_at": event.occurred_at,
        "event_id": event.event_id,
        "payload": event.payload,
        "metadata": {
            "correlation_id": event.correlation_id,
            "causation_id": event.causation_id,
            "traceparent": event.trace_context,
        },
        "upcast": upcast,
    }


def _row(each: dict[str, Any]) -> list[Any]:
    upcast = each["upcast"]
    if upcast is None:
        shown = "-"
    elif "error" in upcast:
        shown = upcast["error"]
    else:
        shown = f"v{upcast['schema_version']} {_compact(upcast['payload'])}"
    return [
        each["version"],
        each["event_type"],
        each["schema_version"],
        each["occurred_at"],
        _compact(each["payload"]),
        shown,
    ]


def _compact(payload: Any) -> str:
    return json.dumps(payload, default=str, separators=(",", ":"))
