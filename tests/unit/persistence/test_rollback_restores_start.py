"""A unit that writes one aggregate several times and rolls back leaves it as the unit found it
(issue 12.1): the version goes back to the one before the unit's first write, so a retry with
that object cannot overwrite somebody else's committed update."""

from __future__ import annotations

import pytest

from cqrs_mongo import (
    AggregateRoot,
    ConcurrencyError,
    InMemoryRepository,
    InMemoryUnitOfWorkFactory,
    PersistenceDispatcher,
    PersistenceRegistry,
)


class Counter(AggregateRoot[str]):
    value: int = 0


class CounterRepository(InMemoryRepository[Counter, str]):
    entity_type = Counter


def _dispatcher() -> tuple[PersistenceDispatcher, InMemoryUnitOfWorkFactory]:
    registry = PersistenceRegistry()
    registry.register_operation(Counter, CounterRepository)
    registry.register_retrieval(Counter, CounterRepository)
    factory = InMemoryUnitOfWorkFactory()
    return PersistenceDispatcher(uow_factories={"default": factory}, registry=registry), factory


async def test_double_write_then_rollback_restores_the_version_the_unit_began_with() -> None:
    dispatcher, factory = _dispatcher()
    await dispatcher.apply(Counter(id="x"))
    [mine] = await dispatcher.fetch_domain(Counter, ["x"])
    assert mine.version == 1
    with pytest.raises(ValueError, match="boom"):
        async with factory() as uow:
            mine.value = 1
            await dispatcher.apply(mine, uow=uow)
            mine.value = 2
            await dispatcher.apply(mine, uow=uow)
            mine.value = 3
            await dispatcher.apply(mine, uow=uow)
            raise ValueError("boom")
    assert mine.version == 1
    [other] = await dispatcher.fetch_domain(Counter, ["x"])
    other.value = 10
    await dispatcher.apply(other)
    with pytest.raises(ConcurrencyError):
        await dispatcher.apply(mine)
    [stored] = await dispatcher.fetch_domain(Counter, ["x"])
    assert (stored.value, stored.version) == (10, 2)


async def test_double_write_then_commit_keeps_the_last_version() -> None:
    dispatcher, factory = _dispatcher()
    counter = Counter(id="y")
    async with factory() as uow:
        await dispatcher.apply(counter, uow=uow)
        counter.value = 5
        await dispatcher.apply(counter, uow=uow)
    assert counter.version == 2
    [stored] = await dispatcher.fetch_domain(Counter, ["y"])
    assert (stored.value, stored.version) == (5, 2)
