"""Trace context through events: the append records it, the projection batch links to it."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.trace import SpanKind
from otel_telemetry import Telemetry

from cqrs_mongo import AggregateRoot, DomainEvent, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.mongo import EventSourcedRepository, MongoUnitOfWorkFactory
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.otel import CqrsMongoInstrumentor
from cqrs_mongo.otel.trace_context import link_context
from cqrs_mongo.projections import Projection, ProjectionContext

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]


class Pinged(DomainEvent):
    note: str


class Probe(AggregateRoot[str]):
    notes: int = 0

    def apply_Pinged(self, event: Pinged) -> None:
        self.notes += 1


class ProbeRepository(EventSourcedRepository[Probe, str]): ...


class ProbeCounts(Projection):
    name = "probe_counts"

    async def on_Pinged(self, event: Pinged, ctx: ProjectionContext) -> None:
        await ctx.inc(ctx.stream_id, pings=1)


def dispatcher_for(factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Probe, ProbeRepository)
    registry.register_retrieval(Probe, ProbeRepository)
    return PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)


def probe(probe_id: str, pings: int) -> Probe:
    found = Probe(id=probe_id)
    for n in range(pings):
        found.add_event(Pinged(note=str(n)))
    return found


async def test_an_event_appended_without_a_span_carries_no_trace_context(
    mongo_client: Any, mongo_db: Any
) -> None:
    await dispatcher_for(MongoUnitOfWorkFactory(mongo_client, mongo_db.name)).apply(probe("p", 1))
    [document] = await mongo_db["events"].find({}).to_list(None)
    assert "traceparent" not in document["metadata"]


async def test_the_projection_batch_is_a_consumer_span_linked_to_the_appending_span(
    mongo_client: Any, mongo_db: Any, telemetry: Telemetry
) -> None:
    factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name)
    dispatcher = dispatcher_for(factory)
    await dispatcher.apply(probe("p-1", 2))
    await dispatcher.apply(probe("p-2", 1))
    transactions = telemetry.named("transaction default")
    assert len(transactions) == 2
    documents = await mongo_db["events"].find({}).sort("_id", 1).to_list(None)
    recorded = {document["metadata"]["traceparent"] for document in documents}
    expected = {
        f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-"
        f"{int(span.context.trace_flags):02x}"
        for span in transactions
    }
    assert recorded == expected

    worker = MongoProjectionWorker(ProbeCounts(), factory)
    assert await worker.run_until_caught_up() == 3
    [batch] = telemetry.named("process probe_counts")
    assert batch.kind is SpanKind.CONSUMER
    assert batch.attributes is not None
    assert dict(batch.attributes) == {
        "messaging.system": "cqrs_mongo",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.consumer.group.name": "probe_counts",
        "messaging.batch.message_count": 3,
        "messaging.destination.name": "events",
    }
    linked = {(link.context.trace_id, link.context.span_id) for link in batch.links}
    producers = {(span.context.trace_id, span.context.span_id) for span in transactions}
    assert linked == producers
    # The batch's transaction and its writes nest under the consumer span.
    inner = [
        span
        for span in telemetry.finished()
        if span.parent is not None and span.parent.span_id == batch.context.span_id
    ]
    assert any(span.name == "transaction default" for span in inner)

    # Health gauges from the real worker's status.
    status = await CqrsMongoInstrumentor().record_projection_status(worker)
    assert status.name == "probe_counts"
    [lag] = telemetry.points("cqrs_mongo.projection.lag.events")
    assert lag.value == 0
    assert lag.attributes["messaging.consumer.group.name"] == "probe_counts"
    [parked] = telemetry.points("cqrs_mongo.projection.parked")
    assert parked.value == 0


def test_a_malformed_trace_context_links_to_nothing() -> None:
    assert link_context("00-" + "0" * 32 + "-" + "1" * 16 + "-01") is None
    assert link_context(None) is None
    assert link_context("01-" + "1" * 32 + "-" + "1" * 16 + "-01") is None
