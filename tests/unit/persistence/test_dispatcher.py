"""Dispatcher routing, units of work, sources, priorities, hooks and SearchResult laziness."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from cqrs_mongo import (
    AggregateRoot,
    ConcurrencyError,
    HandlerNotRegisteredError,
    HookEvent,
    Hooks,
    InMemoryQueryPersistence,
    InMemoryRepository,
    InMemoryStore,
    InMemoryUnitOfWork,
    InMemoryUnitOfWorkFactory,
    InvalidSpecificationError,
    PersistenceDispatcher,
    PersistenceRegistry,
    QueryOptions,
    SourceMismatchError,
    SourceNotRegisteredError,
    SpecificationBuilder,
    UnitOfWorkState,
)
from cqrs_mongo.errors import ConfigurationError


class Counter(AggregateRoot[str]):
    value: int = 0


class CounterRepository(InMemoryRepository[Counter, str]):
    entity_type = Counter


class Row(BaseModel):
    id: str
    n: int


class RowQuery(InMemoryQueryPersistence[Row, str]):
    dto_type = Row


calls: list[str] = []


class AuditWriter:
    async def persist(self, entity: Counter, uow: InMemoryUnitOfWork) -> str:
        calls.append(f"audit:{entity.id}")
        uow.put("audit", f"{entity.id}:{entity.version}", {"id": entity.id})
        return "audit-id"


class FailingWriter:
    async def persist(self, entity: Counter, uow: InMemoryUnitOfWork) -> str:
        raise RuntimeError("boom")


class EventsAwareWriter:
    async def persist(
        self, entity: Counter, uow: InMemoryUnitOfWork, events: list[Any] | None = None
    ) -> str:
        calls.append(f"events:{events!r}")
        return entity.id


def make(
    registry: PersistenceRegistry, store: InMemoryStore | None = None, **kwargs: Any
) -> tuple[PersistenceDispatcher, InMemoryUnitOfWorkFactory]:
    factory = InMemoryUnitOfWorkFactory(store or InMemoryStore(), source="default")
    return PersistenceDispatcher({"default": factory}, registry, **kwargs), factory


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


async def test_operation_chain_runs_by_priority_in_one_unit_and_returns_first_id() -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Counter, AuditWriter, priority=-5)
    registry.register_operation(Counter, CounterRepository, priority=10)
    dispatcher, factory = make(registry)

    assert await dispatcher.apply(Counter(id="c1")) == "c1"
    assert calls == ["audit:c1"]
    # The audit writer saw the version the repository had just written: same unit, after it.
    assert set(factory.store.collection("audit")) == {"c1:1"}


async def test_a_failing_handler_in_the_chain_rolls_back_the_whole_unit() -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Counter, CounterRepository, priority=1)
    registry.register_operation(Counter, FailingWriter, priority=0)
    dispatcher, factory = make(registry)
    counter = Counter(id="c1")

    with pytest.raises(RuntimeError, match="boom"):
        await dispatcher.apply(counter)
    assert factory.store.collection("Counter") == {}
    assert counter.version == 0


async def test_a_handler_registered_after_the_dispatcher_has_used_the_registry_runs_too() -> None:
    # Lookups are remembered per type; a registration must make them be asked again.
    registry = PersistenceRegistry()
    registry.register_operation(Counter, CounterRepository, priority=10)
    registry.register_retrieval(Counter, CounterRepository)
    dispatcher, _ = make(registry)
    await dispatcher.apply(Counter(id="c1"))
    assert await dispatcher.fetch_domain(Counter, ["c1"]) == [Counter(id="c1", version=1)]

    class Nobody(CounterRepository):
        async def retrieve(self, ids: Sequence[str], uow: InMemoryUnitOfWork) -> list[Counter]:
            return []

    registry.register_operation(Counter, AuditWriter, priority=-5)
    registry.register_retrieval(Counter, Nobody, priority=1)
    await dispatcher.apply(Counter(id="c2"))
    assert calls == ["audit:c2"]
    assert await dispatcher.fetch_domain(Counter, ["c1"]) == []


async def test_operation_handlers_of_one_type_must_share_a_source() -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Counter, CounterRepository, source="a")
    with pytest.raises(ConfigurationError, match="must share one source"):
        registry.register_operation(Counter, AuditWriter, source="b")


async def test_highest_priority_retrieval_wins_and_later_registration_breaks_ties() -> None:
    class Loud(CounterRepository):
        async def retrieve(self, ids: Sequence[str], uow: InMemoryUnitOfWork) -> list[Counter]:
            return [Counter(id="loud")]

    registry = PersistenceRegistry()
    registry.register_retrieval(Counter, CounterRepository, priority=1)
    registry.register_retrieval(Counter, Loud, priority=0)
    assert registry.retrieval(Counter).handler_cls is CounterRepository
    registry.register_retrieval(Counter, Loud, priority=1)
    assert registry.retrieval(Counter).handler_cls is Loud


async def test_events_argument_reaches_handlers_that_accept_it() -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Counter, EventsAwareWriter)
    dispatcher, _ = make(registry)
    await dispatcher.apply(Counter(id="c1"), events=["e1"])
    await dispatcher.apply(Counter(id="c1"))
    assert calls == ["events:['e1']", "events:None"]


async def test_missing_handlers_and_sources_name_the_type_and_source() -> None:
    registry = PersistenceRegistry()
    dispatcher, _ = make(registry)
    with pytest.raises(HandlerNotRegisteredError, match="operation handler registered for Counter"):
        await dispatcher.apply(Counter(id="c1"))
    with pytest.raises(HandlerNotRegisteredError, match="retrieval handler registered for Counter"):
        await dispatcher.fetch_domain(Counter, ["c1"])
    with pytest.raises(HandlerNotRegisteredError, match="query-spec handler registered for Row"):
        await dispatcher.fetch(Row, QueryOptions())

    registry.register_operation(Counter, CounterRepository, source="orders_db")
    with pytest.raises(SourceNotRegisteredError, match="'orders_db' \\(needed by Counter\\)"):
        await dispatcher.apply(Counter(id="c1"))


async def test_a_unit_of_another_source_is_refused() -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Counter, CounterRepository, source="orders_db")
    store = InMemoryStore()
    dispatcher = PersistenceDispatcher(
        {
            "orders_db": InMemoryUnitOfWorkFactory(store, source="orders_db"),
            "invoicing_db": InMemoryUnitOfWorkFactory(store, source="invoicing_db"),
        },
        registry,
    )
    async with InMemoryUnitOfWorkFactory(store, source="invoicing_db")() as uow:
        with pytest.raises(SourceMismatchError, match=r"'orders_db'.*'invoicing_db'"):
            await dispatcher.apply(Counter(id="c1"), uow=uow)


async def test_a_single_string_id_is_an_error_not_a_sequence_of_characters() -> None:
    registry = PersistenceRegistry()
    registry.register_retrieval(Counter, CounterRepository)
    registry.register_query(Row, RowQuery)
    dispatcher, _ = make(registry)
    with pytest.raises(InvalidSpecificationError, match="wrap a single id in a list"):
        await dispatcher.fetch(Row, "abc")
    with pytest.raises(InvalidSpecificationError, match="wrap a single id in a list"):
        await dispatcher.fetch_domain(Counter, "abc")


async def test_with_a_unit_the_dispatcher_does_not_commit() -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Counter, CounterRepository)
    dispatcher, factory = make(registry)
    uow = factory()
    async with uow:
        await dispatcher.apply(Counter(id="c1"), uow=uow)
        assert factory.store.collection("Counter") == {}
        assert uow.state is UnitOfWorkState.ACTIVE
    assert set(factory.store.collection("Counter")) == {"c1"}


async def test_stale_version_is_a_concurrency_error_with_expected_and_actual() -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Counter, CounterRepository)
    registry.register_retrieval(Counter, CounterRepository)
    dispatcher, _ = make(registry)
    await dispatcher.apply(Counter(id="c1"))
    [first] = await dispatcher.fetch_domain(Counter, ["c1"])
    [second] = await dispatcher.fetch_domain(Counter, ["c1"])
    await dispatcher.apply(first)
    with pytest.raises(ConcurrencyError, match="'c1': expected version 1, found version 2") as info:
        await dispatcher.apply(second)
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert second.version == 1


async def test_concurrent_units_conflict_at_commit() -> None:
    registry = PersistenceRegistry()
    registry.register_operation(Counter, CounterRepository)
    dispatcher, factory = make(registry)
    await dispatcher.apply(Counter(id="c1"))
    a, b = factory(), factory()
    await a.begin()
    await b.begin()
    [ca] = await CounterRepository().retrieve(["c1"], a)
    [cb] = await CounterRepository().retrieve(["c1"], b)
    await dispatcher.apply(ca, uow=a)
    await dispatcher.apply(cb, uow=b)
    await a.commit()
    with pytest.raises(ConcurrencyError, match="write conflict at commit"):
        await b.commit()
    await b.close()
    assert cb.version == 1  # restored by the rollback callback


async def test_fetch_is_lazy_and_its_hook_span_covers_the_query() -> None:
    events: list[HookEvent] = []
    hooks = Hooks([events.append])
    registry = PersistenceRegistry()
    registry.register_query_spec(Row, RowQuery)
    dispatcher, factory = make(registry, hooks=hooks)
    async with factory() as uow:
        for n in range(5):
            await RowQuery().save(Row(id=f"r{n}", n=n), uow)

    spec = SpecificationBuilder().where("n", ">=", 2).build()
    result = await dispatcher.fetch(Row, QueryOptions().with_specification(spec).with_ordering("n"))
    assert events == []  # nothing ran yet

    assert [r.id for r in await result] == ["r2", "r3", "r4"]
    assert await result.count() == 3
    first = await result.first()
    assert first is not None
    assert first.id == "r2"
    assert [r.n async for r in result.stream(batch_size=2)] == [2, 3, 4]
    page = await result.page()
    assert ([r.id for r in page.items], page.total) == (["r2", "r3", "r4"], 3)

    fetches = [(e.phase, e.detail["mode"]) for e in events if e.operation == "fetch"]
    assert fetches == [
        ("before", "load"), ("after", "load"),
        ("before", "count"), ("after", "count"),
        ("before", "first"), ("after", "first"),
        ("before", "stream"), ("after", "stream"),
        ("before", "page"), ("after", "page"),
    ]  # fmt: skip
    assert all(e.duration is not None for e in events if e.phase == "after")


async def test_hooks_see_errors_and_a_failing_hook_never_breaks_the_operation() -> None:
    seen: list[tuple[str, str]] = []

    def broken(event: HookEvent) -> None:
        raise ValueError("hook bug")

    async def record(event: HookEvent) -> None:
        seen.append((event.operation, event.phase))

    registry = PersistenceRegistry()
    registry.register_operation(Counter, FailingWriter)
    registry.register_retrieval(Counter, CounterRepository)
    dispatcher, _ = make(registry, hooks=Hooks([broken, record]))
    assert await dispatcher.fetch_domain(Counter, ["x"]) == []
    with pytest.raises(RuntimeError, match="boom"):
        await dispatcher.apply(Counter(id="c1"))
    assert seen == [
        ("fetch_domain", "before"), ("fetch_domain", "after"),
        ("apply", "before"), ("apply", "error"),
    ]  # fmt: skip


async def test_ids_stream_fetches_one_batch_at_a_time() -> None:
    batches: list[list[str]] = []

    class Spy(RowQuery):
        async def fetch(self, criteria: Any, uow: InMemoryUnitOfWork) -> Any:
            batches.append(list(criteria))
            return await super().fetch(criteria, uow)

    registry = PersistenceRegistry()
    registry.register_query(Row, Spy)
    dispatcher, factory = make(registry)
    async with factory() as uow:
        for n in range(5):
            await RowQuery().save(Row(id=f"r{n}", n=n), uow)
    result = await dispatcher.fetch(Row, ["r4", "r0", "zz", "r2", "r1"])
    assert [r.id async for r in result.stream(batch_size=2)] == ["r4", "r0", "r2", "r1"]
    assert batches == [["r4", "r0"], ["zz", "r2"], ["r1"]]
