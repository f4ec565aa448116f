"""One CLIENT span and one ``db.client.operation.duration`` measurement per MongoDB command.

Attributes follow the stable database semantic conventions: the span is named
``{db.operation.name} {db.collection.name}`` (the database name when there is no collection,
e.g. ``commitTransaction admin``). pymongo's async client publishes a command's events in the
task that awaits it, so the span's parent is whatever span is current there (the unit of work,
under the dispatcher); the reply is matched to its span by connection and request id, not by
context.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from cqrs_mongo.mongo.monitoring import FinishedCommand, StartedCommand

DB_SYSTEM = "mongodb"

# The boundaries the database metric conventions give for db.client.operation.duration.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


class CommandSpans:
    """Turns command descriptions from the forwarder into spans and duration measurements."""

    def __init__(self, tracer: Tracer, meter: Meter, *, capture_query_text: bool = False) -> None:
        self._tracer = tracer
        self._capture_query_text = capture_query_text
        self._duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._open: dict[tuple[Any, int], tuple[Span, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def command_started(self, command: StartedCommand) -> None:
        """Start the command's span under the span current in the caller's task."""
        attributes: dict[str, Any] = {
            "db.system.name": DB_SYSTEM,
            "db.namespace": command.database,
            "db.operation.name": command.operation,
        }
        if command.collection is not None:
            attributes["db.collection.name"] = command.collection
        if command.server_address is not None:
            attributes["server.address"] = command.server_address
        if command.server_port is not None:
            attributes["server.port"] = command.server_port
        span_attributes = dict(attributes)
        if command.batch_size is not None:
            span_attributes["db.operation.batch.size"] = command.batch_size
        if self._capture_query_text:
            span_attributes["db.query.text"] = command.query_text()
        target = command.collection if command.collection is not None else command.database
        span = self._tracer.start_span(
            f"{command.operation} {target}",
            context=otel_context.get_current(),
            kind=SpanKind.CLIENT,
            attributes=span_attributes,
        )
        with self._lock:
            self._open[command.key] = (span, attributes)

    def command_finished(self, command: FinishedCommand) -> None:
        """End the command's span and record its duration."""
        with self._lock:
            opened = self._open.pop(command.key, None)
        if opened is None:  # started before instrumenting
            return
        span, attributes = opened
        if command.error_type is not None:
            attributes["error.type"] = command.error_type
            span.set_attribute("error.type", command.error_type)
            if command.status_code is not None:
                attributes["db.response.status_code"] = command.status_code
                span.set_attribute("db.response.status_code", command.status_code)
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        self._duration.record(command.duration, attributes)

    def abandon(self) -> None:
        """End every span still open (on uninstrument), so none is left dangling."""
        with self._lock:
            opened, self._open = list(self._open.values()), {}
        for span, _ in opened:
            span.end()
