"""cqrs-mongo's own metrics: transaction retries, cache hits, misses and outages, and the
health of projections (lag, checkpoint age, parked events).

Projection numbers come from ``worker.status()``, which asks the database; observable gauges
are read synchronously by the SDK, so they report the last status recorded (see
:meth:`CqrsMongoInstrumentor.watch_projection`), never a guess.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation


class OperationMetrics:
    """The instruments, made once per instrumentation."""

    def __init__(self, meter: Meter) -> None:
        self._retries = meter.create_counter(
            "cqrs_mongo.transaction.retries",
            unit="{retry}",
            description="Units of work run again, or commits sent again, by error label.",
        )
        self._cache_hits = meter.create_counter(
            "cqrs_mongo.cache.hits", unit="{entry}", description="Ids served from the cache."
        )
        self._cache_misses = meter.create_counter(
            "cqrs_mongo.cache.misses", unit="{entry}", description="Ids read from the database."
        )
        self._outages = meter.create_counter(
            "cqrs_mongo.cache.outages", unit="{outage}", description="Times the cache went down."
        )
        self._outage = False
        meter.create_observable_gauge(
            "cqrs_mongo.cache.outage",
            callbacks=[self._observe_outage],
            unit="1",
            description="1 while the cache is unreachable and reads go to the database, else 0.",
        )
        self.projections = ProjectionGauges(meter)

    def retried(self, operation: str, labels: Sequence[str]) -> None:
        """Count one retry per label (``_OTHER`` when it had none)."""
        scope = "commit" if operation == "uow.commit_retry" else "unit_of_work"
        for label in labels or ["_OTHER"]:
            self._retries.add(1, {"cqrs_mongo.retry.label": label, "cqrs_mongo.retry.scope": scope})

    def cache_read(self, kind: str, hits: int, misses: int) -> None:
        """Count one cache read's hits and misses."""
        attributes = {"cqrs_mongo.cache.kind": kind}
        if hits:
            self._cache_hits.add(hits, attributes)
        if misses:
            self._cache_misses.add(misses, attributes)

    def cache_outage(self, down: bool) -> None:
        """Note that the cache went down (``True``) or came back."""
        if down and not self._outage:
            self._outages.add(1)
        self._outage = down

    def _observe_outage(self, options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(1 if self._outage else 0)


class ProjectionGauges:
    """Lag, checkpoint age and parked events per projection, from the last recorded status."""

    def __init__(self, meter: Meter) -> None:
        self._statuses: dict[str, Any] = {}
        self._lock = threading.Lock()
        for name, unit, field, description in (
            ("cqrs_mongo.projection.lag.events", "{event}", "lag_events", "Events not applied."),
            ("cqrs_mongo.projection.lag", "s", "lag_seconds", "Age of the oldest such event."),
            (
                "cqrs_mongo.projection.checkpoint.age",
                "s",
                "checkpoint_age_seconds",
                "Time since the checkpoint last moved.",
            ),
            ("cqrs_mongo.projection.parked", "{event}", "parked", "Events parked after failing."),
        ):
            meter.create_observable_gauge(
                name, callbacks=[self._reader(field)], unit=unit, description=description
            )

    def record(self, status: Any) -> None:
        """Remember ``status`` (a ``ProjectionStatus``) as its projection's latest."""
        with self._lock:
            self._statuses[str(status.name)] = status

    def forget(self, name: str) -> None:
        """Stop reporting projection ``name``."""
        with self._lock:
            self._statuses.pop(name, None)

    def _reader(self, field: str) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                statuses = list(self._statuses.values())
            for status in statuses:
                value = getattr(status, field, None)
                if value is not None:  # unknown stays unreported rather than zero
                    yield Observation(
                        value,
                        {
                            "messaging.consumer.group.name": str(status.name),
                            "cqrs_mongo.projection.state": str(status.state),
                        },
                    )

        return observe
