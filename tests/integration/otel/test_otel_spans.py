"""Spans and the command metric, with the real OpenTelemetry SDK, on the embedded server."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from otel_telemetry import Telemetry, make_telemetry
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError, OperationFailure
from pymongo.uri_parser import parse_uri

from cqrs_mongo import (
    AggregateRoot,
    DomainEvent,
    PersistenceDispatcher,
    PersistenceRegistry,
    SpecificationBuilder,
)
from cqrs_mongo.mongo import (
    EventSourcedRepository,
    MongoReadModelPersistence,
    MongoUnitOfWorkFactory,
    create_client,
)
from cqrs_mongo.mongo.monitoring import COMMAND_FORWARDER
from cqrs_mongo.otel import CqrsMongoInstrumentor
from cqrs_mongo.otel.commands import DURATION_BUCKETS
from cqrs_mongo.persistence.hooks import observed
from cqrs_mongo.testing import fail_command

pytestmark = pytest.mark.requires_transactions


class ItemAdded(DomainEvent):
    sku: str
    price: Decimal


class Basket(AggregateRoot[str]):
    skus: tuple[str, ...] = ()

    def apply_ItemAdded(self, event: ItemAdded) -> None:
        self.skus = (*self.skus, event.sku)


class BasketRepository(EventSourcedRepository[Basket, str]): ...


def make_dispatcher(client: Any, database: str) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Basket, BasketRepository)
    registry.register_retrieval(Basket, BasketRepository)
    factory = MongoUnitOfWorkFactory(client, database)
    return PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)


def basket(basket_id: str, items: int = 1) -> Basket:
    found = Basket(id=basket_id)
    for n in range(items):
        found.add_event(ItemAdded(sku=f"sku-{n}", price=Decimal("1.50")))
    return found


async def test_apply_nests_command_spans_under_the_transaction_under_the_dispatcher(
    mongo_server: Any, mongo_db: Any
) -> None:
    # Client and dispatcher exist before instrumenting: they are covered all the same.
    client = create_client(mongo_server.uri)
    dispatcher = make_dispatcher(client, mongo_db.name)
    telemetry = make_telemetry()
    instrumentor = CqrsMongoInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    try:
        await dispatcher.apply(basket("b-1", items=3))
    finally:
        instrumentor.uninstrument()
        await client.close()

    apply = telemetry.one("apply Basket")
    transaction = telemetry.one("transaction default")
    insert = telemetry.one("insert events")
    commit = telemetry.one("commitTransaction admin")
    assert apply.kind is SpanKind.INTERNAL
    assert apply.parent is None
    assert apply.attributes is not None
    assert dict(apply.attributes) == {
        "cqrs_mongo.operation": "apply",
        "cqrs_mongo.target": "Basket",
        "cqrs_mongo.ids.count": 1,
        "cqrs_mongo.source": "default",
        "cqrs_mongo.outcome": "ok",
    }
    assert transaction.parent is not None
    assert transaction.parent.span_id == apply.context.span_id
    assert transaction.attributes is not None
    assert transaction.attributes["cqrs_mongo.uow.outcome"] == "committed"
    assert transaction.attributes["cqrs_mongo.uow.in_transaction"] is True
    assert transaction.attributes["cqrs_mongo.uow.attempt"] == 1
    for command in (insert, commit):
        assert command.kind is SpanKind.CLIENT
        assert command.parent is not None
        assert command.parent.span_id == transaction.context.span_id
        assert command.context.trace_id == apply.context.trace_id
    assert insert.attributes is not None
    [(host, port)] = parse_uri(mongo_server.uri)["nodelist"]
    assert dict(insert.attributes) == {
        "db.system.name": "mongodb",
        "db.namespace": mongo_db.name,
        "db.collection.name": "events",
        "db.operation.name": "insert",
        "server.address": host,
        "server.port": port,
        "db.operation.batch.size": 3,
    }
    assert commit.attributes is not None
    assert commit.attributes["db.namespace"] == "admin"
    assert "db.collection.name" not in commit.attributes
    assert "db.query.text" not in insert.attributes


async def test_fetch_domain_runs_its_find_in_a_session_span(
    mongo_client: Any, mongo_db: Any, telemetry: Telemetry
) -> None:
    dispatcher = make_dispatcher(mongo_client, mongo_db.name)
    await dispatcher.apply(basket("b-2"))
    telemetry.spans.clear()
    [loaded] = await dispatcher.fetch_domain(Basket, ["b-2", "missing"])
    assert loaded.skus == ("sku-0",)
    fetch = telemetry.one("fetch_domain Basket")
    session = telemetry.one("uow default")
    find = telemetry.one("find events")
    assert fetch.attributes is not None
    assert fetch.attributes["cqrs_mongo.ids.count"] == 2
    assert session.parent is not None
    assert session.parent.span_id == fetch.context.span_id
    assert find.parent is not None
    assert find.parent.span_id == session.context.span_id
    assert session.attributes is not None
    assert session.attributes["cqrs_mongo.uow.read_only"] is True
    assert session.attributes["cqrs_mongo.uow.in_transaction"] is False


async def test_every_command_records_its_duration_with_the_conventions_buckets(
    mongo_client: Any, mongo_db: Any, telemetry: Telemetry
) -> None:
    dispatcher = make_dispatcher(mongo_client, mongo_db.name)
    await dispatcher.apply(basket("b-3"))
    await dispatcher.fetch_domain(Basket, ["b-3"])
    commands = [span for span in telemetry.finished() if span.kind is SpanKind.CLIENT]
    points = telemetry.points("db.client.operation.duration")
    assert sum(point.count for point in points) == len(commands)
    assert all(tuple(point.explicit_bounds) == DURATION_BUCKETS for point in points)
    by_operation = {
        (point.attributes["db.operation.name"], point.attributes.get("db.collection.name")): point
        for point in points
    }
    assert by_operation[("insert", "events")].count == 1
    assert by_operation[("find", "events")].count == 1
    insert = by_operation[("insert", "events")]
    assert insert.attributes["db.system.name"] == "mongodb"
    assert insert.attributes["db.namespace"] == mongo_db.name
    assert 0 < insert.sum < 10


async def test_a_failed_command_carries_its_status_code_and_error_type(
    mongo_client: Any, mongo_db: Any, telemetry: Telemetry
) -> None:
    with pytest.raises(OperationFailure):
        await mongo_db.command({"noSuchCommand": 1})
    await mongo_db["things"].insert_one({"_id": 1})
    with pytest.raises(DuplicateKeyError):
        await mongo_db["things"].insert_one({"_id": 1})
    unknown = telemetry.one(f"noSuchCommand {mongo_db.name}")
    assert unknown.status.status_code is StatusCode.ERROR
    assert unknown.attributes is not None
    assert unknown.attributes["db.response.status_code"] == "59"
    assert unknown.attributes["error.type"] == "59"
    first, second = telemetry.named("insert things")
    assert first.attributes is not None
    assert "error.type" not in first.attributes
    assert second.attributes is not None
    assert second.attributes["db.response.status_code"] == "11000"
    assert second.status.status_code is StatusCode.ERROR
    failed = [
        point
        for point in telemetry.points("db.client.operation.duration")
        if point.attributes.get("error.type") == "11000"
    ]
    assert [point.count for point in failed] == [1]


async def test_a_retried_commit_is_counted_by_label_and_marked_on_the_transaction(
    mongo_client: Any, mongo_db: Any, telemetry: Telemetry
) -> None:
    dispatcher = make_dispatcher(mongo_client, mongo_db.name)
    async with fail_command(
        mongo_client,
        ["commitTransaction"],
        error_code=91,
        error_labels=["UnknownTransactionCommitResult"],
    ):
        # Two events are two documents: a transaction (one event would be sent alone).
        await dispatcher.apply(basket("b-4", items=2))
    transaction = telemetry.one("transaction default")
    assert transaction.attributes is not None
    assert transaction.attributes["cqrs_mongo.uow.commit_attempts"] >= 2
    assert "commit retry" in [event.name for event in transaction.events]
    retries = telemetry.points("cqrs_mongo.transaction.retries")
    labelled = {
        point.attributes["cqrs_mongo.retry.label"]: point.value
        for point in retries
        if point.attributes["cqrs_mongo.retry.scope"] == "commit"
    }
    assert labelled.get("UnknownTransactionCommitResult", 0) >= 1


async def test_a_rerun_handler_gives_one_unit_span_per_attempt(
    mongo_client: Any, mongo_db: Any, telemetry: Telemetry
) -> None:
    factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name)

    async def handler(uow: Any) -> None:
        await uow.collection("things").insert_one({"n": 1}, session=uow.session)

    async with fail_command(
        mongo_client, ["insert"], error_code=112, error_labels=["TransientTransactionError"]
    ):
        await factory.run(handler)
    first, second = sorted(
        telemetry.named("uow default") + telemetry.named("transaction default"),
        key=lambda span: span.start_time or 0,
    )
    assert first.attributes is not None
    assert second.attributes is not None
    assert (
        first.attributes["cqrs_mongo.uow.attempt"],
        second.attributes["cqrs_mongo.uow.attempt"],
    ) == (1, 2)
    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes["cqrs_mongo.uow.outcome"] == "rolled_back"
    assert second.attributes["cqrs_mongo.uow.outcome"] == "committed"
    [point] = [
        point
        for point in telemetry.points("cqrs_mongo.transaction.retries")
        if point.attributes["cqrs_mongo.retry.scope"] == "unit_of_work"
    ]
    assert point.attributes["cqrs_mongo.retry.label"] == "TransientTransactionError"
    assert point.value == 1


async def test_query_text_is_recorded_only_when_asked_for(mongo_server: Any, mongo_db: Any) -> None:
    client = create_client(mongo_server.uri)
    telemetry = make_telemetry()
    instrumentor = CqrsMongoInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        capture_query_text=True,
    )
    try:
        await client[mongo_db.name]["things"].find_one({"colour": "teal"})
    finally:
        instrumentor.uninstrument()
        await client.close()
    find = telemetry.one("find things")
    assert find.attributes is not None
    assert "teal" in str(find.attributes["db.query.text"])


async def test_nothing_is_emitted_when_not_instrumented_or_after_uninstrument(
    mongo_server: Any, mongo_db: Any
) -> None:
    telemetry = make_telemetry()
    client = create_client(mongo_server.uri)
    dispatcher = make_dispatcher(client, mongo_db.name)
    instrumentor = CqrsMongoInstrumentor()
    instrumentor.instrument(
        tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
    )
    instrumentor.uninstrument()
    try:
        assert not observed()
        assert COMMAND_FORWARDER._targets == ()
        await dispatcher.apply(basket("b-5"))
        await dispatcher.fetch_domain(Basket, ["b-5"])
    finally:
        await client.close()
    assert telemetry.finished() == []
    assert telemetry.points("db.client.operation.duration") == []


def test_the_instrumentor_is_one_per_process_and_instrumenting_twice_keeps_the_first() -> None:
    first, second = CqrsMongoInstrumentor(), CqrsMongoInstrumentor()
    assert first is second
    telemetry, other = make_telemetry(), make_telemetry()
    first.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        second.instrument(tracer_provider=other.tracer_provider)
        assert first.is_instrumented
    finally:
        second.uninstrument()
    assert not first.is_instrumented


class Shelf(BaseModel):
    id: str
    aisle: int


class Shelves(MongoReadModelPersistence[Shelf, str]):
    dto_type = Shelf
    collection = "shelves"


async def test_a_query_is_a_fetch_span_over_its_read_only_unit_and_command(
    mongo_client: Any, mongo_db: Any, telemetry: Telemetry
) -> None:
    await mongo_db["shelves"].insert_many([{"_id": "s1", "aisle": 1}, {"_id": "s2", "aisle": 2}])
    registry = PersistenceRegistry()
    registry.register_query(Shelf, Shelves)
    registry.register_query_spec(Shelf, Shelves)
    dispatcher = PersistenceDispatcher(
        {"default": MongoUnitOfWorkFactory(mongo_client, mongo_db.name)}, registry
    )
    telemetry.spans.clear()
    shelves = await (await dispatcher.fetch(Shelf, ["s1", "s2"]))
    assert [s.id for s in shelves] == ["s1", "s2"]
    spec = SpecificationBuilder().where("aisle", "=", 2).build()
    assert await (await dispatcher.fetch(Shelf, spec)).count() == 1
    by_ids, by_spec = telemetry.named("fetch Shelf")
    assert by_ids.attributes is not None
    assert by_ids.attributes["cqrs_mongo.fetch.mode"] == "load"
    assert by_ids.attributes["cqrs_mongo.ids.count"] == 2
    assert by_spec.attributes is not None
    assert by_spec.attributes["cqrs_mongo.fetch.mode"] == "count"
    first_find = telemetry.named("find shelves")[0]
    assert first_find.parent is not None
    [session] = [
        s for s in telemetry.named("uow default") if s.context.span_id == first_find.parent.span_id
    ]
    assert session.parent is not None
    assert session.parent.span_id == by_ids.context.span_id


async def test_concurrent_applies_each_nest_their_commands_under_their_own_transaction(
    mongo_client: Any, mongo_db: Any, telemetry: Telemetry
) -> None:
    dispatcher = make_dispatcher(mongo_client, mongo_db.name)
    await asyncio.gather(*(dispatcher.apply(basket(f"c-{n}", items=2)) for n in range(6)))
    applies = {span.context.span_id: span for span in telemetry.named("apply Basket")}
    transactions = {span.context.span_id: span for span in telemetry.named("transaction default")}
    assert len(applies) == len(transactions) == 6
    inserts = telemetry.named("insert events")
    assert len(inserts) == 6
    parents = set()
    for insert in inserts:
        assert insert.parent is not None
        transaction = transactions[insert.parent.span_id]
        assert transaction.parent is not None
        assert transaction.parent.span_id in applies
        assert insert.context.trace_id == transaction.context.trace_id
        parents.add(insert.parent.span_id)
    assert len(parents) == 6  # no two commands share a transaction span
    assert len({span.context.trace_id for span in applies.values()}) == 6
