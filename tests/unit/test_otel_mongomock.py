"""With the instrumentor on, mongomock-based unit tests keep working: operation spans only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cqrs_mongo import AggregateRoot, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWorkFactory
from cqrs_mongo.otel import CqrsMongoInstrumentor


class Lamp(AggregateRoot[str]):
    lit: bool = False


class LampRepository(MongoRepository[Lamp, str]):
    entity_type = Lamp
    collection = "lamps"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    CqrsMongoInstrumentor().instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        CqrsMongoInstrumentor().uninstrument()


async def test_apply_and_fetch_on_mongomock_are_traced_without_command_spans(
    mongomock_client: Any, spans: InMemorySpanExporter
) -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Lamp, LampRepository)
    registry.register_retrieval(Lamp, LampRepository)
    factory = MongoUnitOfWorkFactory(mongomock_client, "home")
    dispatcher = PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)
    await dispatcher.apply(Lamp(id="l1", lit=True))
    [lamp] = await dispatcher.fetch_domain(Lamp, ["l1"])
    assert lamp.lit
    names = [span.name for span in spans.get_finished_spans()]
    assert names == ["uow default", "apply Lamp", "uow default", "fetch_domain Lamp"]
