"""The instrumentor on SDK providers with in-memory exporters, for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from otel_telemetry import Telemetry, make_telemetry

from cqrs_mongo.otel import CqrsMongoInstrumentor


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """SDK providers with in-memory exporters, instrumented for one test."""
    found = make_telemetry()
    instrumentor = CqrsMongoInstrumentor()
    instrumentor.instrument(
        tracer_provider=found.tracer_provider, meter_provider=found.meter_provider
    )
    try:
        yield found
    finally:
        instrumentor.uninstrument()
        found.meter_provider.shutdown()
