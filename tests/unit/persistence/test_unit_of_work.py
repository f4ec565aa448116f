"""The unit-of-work state machine, its callbacks and its context variable."""

from __future__ import annotations

import pytest

from cqrs_mongo import (
    HookEvent,
    Hooks,
    InMemoryStore,
    InMemoryUnitOfWork,
    UnitOfWorkError,
    UnitOfWorkState,
    current_unit_of_work,
)


def unit(hooks: Hooks | None = None) -> InMemoryUnitOfWork:
    return InMemoryUnitOfWork(InMemoryStore(), hooks=hooks)


async def test_commit_then_close_moves_through_the_states() -> None:
    uow = unit()
    assert uow.state is UnitOfWorkState.NEW
    await uow.begin()
    assert uow.state is UnitOfWorkState.ACTIVE
    await uow.commit()
    assert uow.state is UnitOfWorkState.COMMITTED
    await uow.close()
    assert uow.state is UnitOfWorkState.CLOSED
    await uow.close()  # harmless


async def test_misuse_raises_naming_the_state() -> None:
    uow = unit()
    with pytest.raises(UnitOfWorkError, match=r"Cannot commit: unit of work is new\."):
        await uow.commit()
    await uow.begin()
    with pytest.raises(UnitOfWorkError, match=r"Cannot begin: unit of work is active\."):
        await uow.begin()
    await uow.commit()
    with pytest.raises(UnitOfWorkError, match=r"Cannot commit: unit of work is committed\."):
        await uow.commit()
    await uow.close()
    with pytest.raises(UnitOfWorkError, match="closed"):
        uow.put("c", 1, {"id": 1})
    with pytest.raises(UnitOfWorkError, match="closed"):
        uow.on_commit(lambda: None)


async def test_exception_in_block_rolls_back_and_runs_only_rollback_callbacks() -> None:
    ran: list[str] = []
    uow = unit()
    with pytest.raises(KeyError):
        async with uow:
            uow.put("things", 1, {"id": 1})
            uow.on_commit(lambda: ran.append("commit"))
            uow.on_rollback(lambda: ran.append("rollback"))
            raise KeyError("x")
    assert ran == ["rollback"]
    assert uow.store.collection("things") == {}
    assert uow.state is UnitOfWorkState.CLOSED


async def test_after_commit_callbacks_run_after_commit_and_a_failing_one_does_not_undo_it() -> None:
    ran: list[str] = []

    async def second() -> None:
        ran.append("second")

    def broken() -> None:
        raise RuntimeError("callback bug")

    uow = unit()
    async with uow:
        uow.put("things", 1, {"id": 1})
        uow.on_commit(broken)
        uow.on_commit(second)
        assert ran == []
    assert ran == ["second"]
    assert set(uow.store.collection("things")) == {1}


async def test_read_only_unit_refuses_writes() -> None:
    uow = unit()
    uow.read_only = True
    async with uow:
        with pytest.raises(UnitOfWorkError, match="read-only"):
            uow.put("things", 1, {"id": 1})


async def test_current_unit_is_set_while_active_and_nests() -> None:
    outer, inner = unit(), unit()
    assert current_unit_of_work() is None
    async with outer:
        assert current_unit_of_work() is outer
        async with inner:
            assert current_unit_of_work() is inner
        assert current_unit_of_work() is outer
    assert current_unit_of_work() is None


async def test_transitions_are_reported_to_hooks() -> None:
    seen: list[str] = []

    def record(event: HookEvent) -> None:
        seen.append(f"{event.operation}:{event.phase}")

    async with unit(Hooks([record])):
        pass
    assert seen == ["uow.begin:before", "uow.begin:after", "uow.commit:before", "uow.commit:after"]


async def test_a_task_started_inside_a_unit_sees_it_as_current() -> None:
    import asyncio

    async def current() -> object:
        return current_unit_of_work()

    async with unit() as uow:
        assert await asyncio.create_task(current()) is uow
    assert await asyncio.create_task(current()) is None


async def test_a_timer_set_while_a_unit_was_current_does_not_keep_it_alive() -> None:
    # Every timer and task copies the Context; the driver cancels a timer per command, and a
    # cancelled timer keeps its copy until it falls due. The unit must not be in it.
    import asyncio
    import gc
    import weakref

    loop = asyncio.get_running_loop()
    gc.disable()
    try:
        uow = unit()
        async with uow:
            assert current_unit_of_work() is uow
            loop.call_later(60, lambda: None).cancel()
        freed = weakref.ref(uow)
        del uow
        assert freed() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
async def test_a_closed_unit_is_freed_at_once_not_by_the_garbage_collector(outcome: str) -> None:
    # A unit that wrote keeps callbacks holding itself (its version restore); left in a
    # reference cycle, every unit of a busy service would wait for a collection.
    import gc
    import weakref

    from cqrs_mongo import AggregateRoot

    class Thing(AggregateRoot[str]):
        pass

    thing = Thing(id="t-1")
    gc.disable()
    try:
        uow = unit()
        async with uow:
            uow.keep_version_for_rollback(thing)
            uow.on_commit(lambda: None)
            uow.on_rollback(lambda: None)
            if outcome == "rollback":
                await uow.rollback()
        freed = weakref.ref(uow)
        del uow
        assert freed() is None
    finally:
        gc.enable()
