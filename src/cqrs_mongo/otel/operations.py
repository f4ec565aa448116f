"""Spans around dispatcher operations, units of work, cache reads and projection batches.

The instrumentor registers an :class:`OperationSpans` as a process-wide observer
(:func:`cqrs_mongo.persistence.hooks.add_observer`), so every dispatcher, unit of work, cache
and projection worker is covered, whenever it was made. Each span is made current for the
block it covers, so what runs inside (the unit of work, its commands) nests under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import Token
from functools import partial
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer

from cqrs_mongo.otel.metrics import OperationMetrics
from cqrs_mongo.otel.trace_context import link_context, traceparent
from cqrs_mongo.persistence.hooks import HookEvent

# Transitions inside a unit of work: the unit's own span covers them, and the commands they
# send (commitTransaction, abortTransaction) are spans of their own.
_QUIET = frozenset({"uow.begin", "uow.commit", "uow.rollback"})

DISPATCHER_OPERATIONS = frozenset({"apply", "fetch_domain", "fetch"})


class _Scope(AbstractContextManager[Span]):
    """A span made current for a block; attributes from ``detail`` are added as it ends."""

    __slots__ = ("_detail", "_finish", "_span", "_token")

    def __init__(self, span: Span, detail: dict[str, Any], finish: Any) -> None:
        self._span = span
        self._detail = detail
        self._finish = finish
        self._token: Token[Context] | None = None

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._finish(self._span, self._detail, exc)
            if exc is not None:
                self._span.record_exception(exc)
                self._span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                self._span.set_attribute("error.type", type(exc).__qualname__)
        finally:
            if self._token is not None:
                otel_context.detach(self._token)
            self._span.end()


class OperationSpans:
    """The process-wide observer behind the instrumentor's spans and our own metrics."""

    def __init__(self, tracer: Tracer, metrics: OperationMetrics) -> None:
        self._tracer = tracer
        self._metrics = metrics

    # --- Observer ------------------------------------------------------------------------

    def span(
        self,
        operation: str,
        target: type[Any] | None,
        ids: Sequence[Any],
        source: str | None,
        detail: dict[str, Any],
    ) -> AbstractContextManager[object]:
        """The span for ``operation``; transitions inside a unit get none."""
        if operation in _QUIET:
            return nullcontext()
        if operation in DISPATCHER_OPERATIONS:
            return self._dispatcher(operation, target, ids, source, detail)
        if operation == "uow":
            return self._unit(target, source, detail)
        if operation == "projection.batch":
            return self._batch(detail)
        if operation == "cache.read":
            return self._cache_read(target, ids, detail)
        name = f"{operation} {_name(target)}" if target is not None else operation
        span = self._tracer.start_span(name, kind=SpanKind.INTERNAL)
        return _Scope(span, detail, _no_finish)

    def notify(self, event: HookEvent) -> None:
        """Retries, commit retries and cache outages: counters and events on the current span."""
        labels = list(event.detail.get("labels", ()))
        if event.operation in ("uow.retry", "uow.commit_retry"):
            self._metrics.retried(event.operation, labels)
            trace.get_current_span().add_event(
                "retry" if event.operation == "uow.retry" else "commit retry",
                {
                    "cqrs_mongo.retry.labels": labels,
                    "cqrs_mongo.retry.attempt": int(event.detail.get("attempt", 0)),
                    "error.type": type(event.error).__qualname__ if event.error else "_OTHER",
                },
            )
        elif event.operation == "cache.outage":
            self._metrics.cache_outage(True)
        elif event.operation == "cache.recovered":
            self._metrics.cache_outage(False)

    def trace_context(self) -> str | None:
        """The current span's W3C ``traceparent``, or ``None`` outside any recorded span."""
        return traceparent(trace.get_current_span())

    # --- span kinds ----------------------------------------------------------------------

    def _dispatcher(
        self,
        operation: str,
        target: type[Any] | None,
        ids: Sequence[Any],
        source: str | None,
        detail: dict[str, Any],
    ) -> _Scope:
        attributes: dict[str, Any] = {
            "cqrs_mongo.operation": operation,
            "cqrs_mongo.target": _name(target),
            "cqrs_mongo.ids.count": len(ids),
        }
        if source is not None:
            attributes["cqrs_mongo.source"] = source
        if "mode" in detail:
            attributes["cqrs_mongo.fetch.mode"] = str(detail["mode"])
        span = self._tracer.start_span(
            f"{operation} {_name(target)}", kind=SpanKind.INTERNAL, attributes=attributes
        )
        return _Scope(span, detail, _finish_dispatcher)

    def _unit(self, target: type[Any] | None, source: str | None, detail: dict[str, Any]) -> _Scope:
        attributes: dict[str, Any] = {
            "cqrs_mongo.uow.type": _name(target),
            "cqrs_mongo.uow.read_only": bool(detail.get("read_only", False)),
            "cqrs_mongo.uow.attempt": int(detail.get("attempt", 1)),
        }
        if source is not None:
            attributes["cqrs_mongo.source"] = source
        label = source or "default"
        span = self._tracer.start_span(
            f"uow {label}", kind=SpanKind.INTERNAL, attributes=attributes
        )
        return _Scope(span, detail, partial(_finish_unit, label))

    def _batch(self, detail: dict[str, Any]) -> _Scope:
        projection = str(detail.get("projection", ""))
        links = [
            Link(found)
            for found in (link_context(each) for each in detail.get("trace_contexts", ()))
            if found is not None
        ]
        attributes: dict[str, Any] = {
            "messaging.system": "cqrs_mongo",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.consumer.group.name": projection,
            "messaging.batch.message_count": int(detail.get("batch_size", 0)),
        }
        if detail.get("destination"):
            attributes["messaging.destination.name"] = str(detail["destination"])
        span = self._tracer.start_span(
            f"process {projection}", kind=SpanKind.CONSUMER, attributes=attributes, links=links
        )
        return _Scope(span, detail, _no_finish)

    def _cache_read(
        self, target: type[Any] | None, ids: Sequence[Any], detail: dict[str, Any]
    ) -> _Scope:
        span = self._tracer.start_span(
            f"cache.read {_name(target)}",
            kind=SpanKind.INTERNAL,
            attributes={"cqrs_mongo.target": _name(target), "cqrs_mongo.ids.count": len(ids)},
        )
        return _Scope(span, detail, self._finish_cache_read)

    def _finish_cache_read(
        self, span: Span, detail: dict[str, Any], error: BaseException | None
    ) -> None:
        hits, misses = int(detail.get("hits", 0)), int(detail.get("misses", 0))
        span.set_attribute("cqrs_mongo.cache.hits", hits)
        span.set_attribute("cqrs_mongo.cache.misses", misses)
        self._metrics.cache_read(str(detail.get("kind", "")), hits, misses)


def _no_finish(span: Span, detail: dict[str, Any], error: BaseException | None) -> None:
    return None


def _finish_dispatcher(span: Span, detail: dict[str, Any], error: BaseException | None) -> None:
    span.set_attribute("cqrs_mongo.outcome", "error" if error is not None else "ok")


def _finish_unit(
    label: str, span: Span, detail: dict[str, Any], error: BaseException | None
) -> None:
    # Whether the unit ran a transaction is known only once it has begun.
    in_transaction = bool(detail.get("in_transaction", False))
    span.set_attribute("cqrs_mongo.uow.in_transaction", in_transaction)
    span.set_attribute("cqrs_mongo.uow.outcome", str(detail.get("outcome", "unknown")))
    if in_transaction:
        span.update_name(f"transaction {label}")
        span.set_attribute("cqrs_mongo.uow.commit_attempts", int(detail.get("commit_attempts", 1)))


def _name(target: type[Any] | None) -> str:
    return target.__qualname__ if target is not None else "-"
