"""Cache hits, misses and outages as OpenTelemetry metrics (the real SDK, in-memory reader)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from caching_doubles import CountingCache, FakeClock, Order, World
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.otel import CqrsMongoInstrumentor


@pytest.fixture
def reader() -> Iterator[tuple[InMemoryMetricReader, InMemorySpanExporter]]:
    metrics, spans = InMemoryMetricReader(), InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    meter_provider = MeterProvider(metric_readers=[metrics])
    CqrsMongoInstrumentor().instrument(
        tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    try:
        yield metrics, spans
    finally:
        CqrsMongoInstrumentor().uninstrument()
        meter_provider.shutdown()


def values(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point.value
        for resource in (data.resource_metrics if data else ())
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


async def test_hits_and_misses_are_counted_per_id(
    reader: tuple[InMemoryMetricReader, InMemorySpanExporter],
) -> None:
    metrics, spans = reader
    world = World()
    cached = CachingPersistenceDispatcher(inner=world.dispatcher, cache_service=CountingCache())
    await world.seed_orders("o1", "o2", "o3")
    await cached.fetch_domain(Order, ["o1", "o2"])  # two misses, then cached
    await cached.fetch_domain(Order, ["o1", "o2", "o3"])  # two hits, one miss
    assert values(metrics, "cqrs_mongo.cache.hits") == [2]
    assert values(metrics, "cqrs_mongo.cache.misses") == [3]
    reads = [span for span in spans.get_finished_spans() if span.name == "cache.read Order"]
    assert [(s.attributes or {}).get("cqrs_mongo.cache.hits") for s in reads] == [0, 2]


async def test_an_outage_is_counted_and_the_gauge_says_down_until_it_recovers(
    reader: tuple[InMemoryMetricReader, InMemorySpanExporter],
) -> None:
    metrics, _ = reader
    world = World()
    cache = CountingCache()
    clock = FakeClock()
    cached = CachingPersistenceDispatcher(
        inner=world.dispatcher, cache_service=cache, breaker_cooldown=5.0
    )
    cached.cache.breaker.clock = clock
    await world.seed_orders("o1")
    cache.down = True
    await cached.fetch_domain(Order, ["o1"])
    assert values(metrics, "cqrs_mongo.cache.outages") == [1]
    assert values(metrics, "cqrs_mongo.cache.outage") == [1]
    cache.down = False
    clock.now += 5
    await cached.fetch_domain(Order, ["o1"])
    assert values(metrics, "cqrs_mongo.cache.outage") == [0]
