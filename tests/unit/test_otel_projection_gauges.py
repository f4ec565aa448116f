"""Projection health gauges report the last recorded ``worker.status()`` (the real SDK)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from cqrs_mongo.errors import ConfigurationError
from cqrs_mongo.otel import CqrsMongoInstrumentor


@dataclass(frozen=True)
class Status:
    """The shape of ``ProjectionStatus``."""

    name: str
    state: str
    lag_events: int | None
    lag_seconds: float | None
    checkpoint_age_seconds: float | None
    parked: int
    last_error: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None


class FakeWorker:
    def __init__(self, name: str, *statuses: Status | Exception) -> None:
        self.name = name
        self._statuses = list(statuses)
        self.calls = 0

    async def status(self) -> Status:
        self.calls += 1
        found = self._statuses[min(self.calls, len(self._statuses)) - 1]
        if isinstance(found, Exception):
            raise found
        return found


@pytest.fixture
def reader() -> Iterator[InMemoryMetricReader]:
    found = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[found])
    CqrsMongoInstrumentor().instrument(meter_provider=provider)
    try:
        yield found
    finally:
        CqrsMongoInstrumentor().uninstrument()
        provider.shutdown()


def gauge(reader: InMemoryMetricReader, name: str) -> dict[str, Any]:
    data = reader.get_metrics_data()
    return {
        point.attributes["messaging.consumer.group.name"]: point.value
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    }


async def test_a_recorded_status_is_what_the_gauges_report(reader: InMemoryMetricReader) -> None:
    worker = FakeWorker("orders", Status("orders", "streaming", 12, 3.5, 0.25, 2))
    status = await CqrsMongoInstrumentor().record_projection_status(worker)
    assert status.lag_events == 12
    assert gauge(reader, "cqrs_mongo.projection.lag.events") == {"orders": 12}
    assert gauge(reader, "cqrs_mongo.projection.lag") == {"orders": 3.5}
    assert gauge(reader, "cqrs_mongo.projection.checkpoint.age") == {"orders": 0.25}
    assert gauge(reader, "cqrs_mongo.projection.parked") == {"orders": 2}


async def test_an_unknown_lag_is_left_out_rather_than_reported_as_zero(
    reader: InMemoryMetricReader,
) -> None:
    worker = FakeWorker("orders", Status("orders", "failed", None, None, None, 0, "boom"))
    await CqrsMongoInstrumentor().record_projection_status(worker)
    assert gauge(reader, "cqrs_mongo.projection.lag.events") == {}
    assert gauge(reader, "cqrs_mongo.projection.parked") == {"orders": 0}


async def test_watching_records_again_and_survives_a_failed_read(
    reader: InMemoryMetricReader,
) -> None:
    worker = FakeWorker(
        "orders",
        Status("orders", "streaming", 5, 1.0, 0.1, 0),
        RuntimeError("server away"),
        Status("orders", "streaming", 1, 0.2, 0.1, 0),
    )
    task = CqrsMongoInstrumentor().watch_projection(worker, interval=0.01)
    for _ in range(500):
        if worker.calls >= 3:
            break
        await asyncio.sleep(0.01)
    assert gauge(reader, "cqrs_mongo.projection.lag.events") == {"orders": 1}
    CqrsMongoInstrumentor().uninstrument()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_recording_without_instrumenting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not instrumented"):
        await CqrsMongoInstrumentor().record_projection_status(FakeWorker("x"))
