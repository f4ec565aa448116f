"""The event loop's one deadline watch: limits on awaits, kept by one timer."""

from __future__ import annotations

import asyncio

import pytest

from cqrs_mongo.mongo.transactions.deadlines import DeadlineWatch, deadline_watch


async def limited(watch: DeadlineWatch, seconds: float, work: float) -> str:
    watched = watch.start(seconds)
    try:
        try:
            await asyncio.sleep(work)
        finally:
            expired = watch.finish(watched)
    except asyncio.CancelledError:
        if expired:
            return "timed out"
        raise
    return "done"


async def test_an_await_within_its_limit_ends_normally_and_leaves_no_timer() -> None:
    watch = DeadlineWatch(asyncio.get_running_loop())
    assert await limited(watch, 5.0, 0) == "done"
    assert await limited(watch, 5.0, 0) == "done"
    # One timer for both, armed at the earliest limit; when it fires nothing is watched.
    assert watch._timer is not None
    watch._expire()
    assert watch._timer is None


async def test_an_await_past_its_limit_is_cancelled_and_told_apart() -> None:
    watch = DeadlineWatch(asyncio.get_running_loop())
    started = asyncio.get_running_loop().time()
    assert await limited(watch, 0.05, 10) == "timed out"
    assert 0.05 <= asyncio.get_running_loop().time() - started < 1
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0  # the cancellation was taken back
    assert await limited(watch, 5.0, 0) == "done"  # and nothing is pending on the task


async def test_a_cancellation_from_elsewhere_propagates_even_past_the_limit() -> None:
    watch = DeadlineWatch(asyncio.get_running_loop())
    before = asyncio.create_task(limited(watch, 10, 10))
    await asyncio.sleep(0.01)
    before.cancel()  # asked for by someone else, within the limit
    with pytest.raises(asyncio.CancelledError):
        await before

    both = asyncio.create_task(limited(watch, 0, 10))
    await asyncio.sleep(0)  # it waits; its limit, due now, fires on the next turn
    both.cancel()  # someone else asks too, before it resumes
    with pytest.raises(asyncio.CancelledError):
        await both
    assert watch._watched == set()


async def test_each_await_keeps_its_own_limit_with_one_timer() -> None:
    watch = DeadlineWatch(asyncio.get_running_loop())
    results = await asyncio.gather(
        limited(watch, 5.0, 0.01), limited(watch, 0.05, 10), limited(watch, 0.2, 10)
    )
    assert results == ["done", "timed out", "timed out"]
    assert watch._watched == set()


async def test_the_watch_belongs_to_the_running_loop() -> None:
    assert deadline_watch() is deadline_watch()
    assert deadline_watch().loop is asyncio.get_running_loop()
    loop = asyncio.get_running_loop()
    refused: asyncio.Future[str] = loop.create_future()

    def outside_a_task() -> None:
        try:
            deadline_watch().start(1.0)
        except RuntimeError as exc:
            refused.set_result(str(exc))

    loop.call_soon(outside_a_task)
    assert "inside a task" in await refused


async def test_a_limit_waits_while_the_task_is_busy_and_cancels_once_it_is_not() -> None:
    watch = DeadlineWatch(asyncio.get_running_loop())
    busy = True

    async def step() -> str:
        nonlocal busy
        watched = watch.start(0.01, busy=lambda task: busy)
        try:
            try:
                await asyncio.sleep(0.2)  # a step the limit must not cut: it ends normally
                busy = False
                await asyncio.sleep(10)  # cut here, once the step is over
            finally:
                expired = watch.finish(watched)
        except asyncio.CancelledError:
            return "timed out after the step" if expired and not busy else "cut in the step"
        return "done"

    assert await step() == "timed out after the step"


def test_the_driver_tells_when_a_task_is_opening_a_connection() -> None:
    # pymongo closes the socket of a connect cancelled midway only on its own timeout: the
    # lone write's limit waits for the connect to end (it has connectTimeoutMS).
    from cqrs_mongo.mongo.driver import opening_connection

    async def _async_create_connection() -> None:  # the name pymongo's connect has
        await asyncio.sleep(10)

    async def writing() -> None:
        await _async_create_connection()

    async def scenario() -> tuple[bool, bool]:
        connecting = asyncio.create_task(writing())
        reading = asyncio.create_task(asyncio.sleep(10))
        await asyncio.sleep(0)
        found = opening_connection(connecting), opening_connection(reading)
        connecting.cancel()
        reading.cancel()
        return found

    assert asyncio.run(scenario()) == (True, False)


def test_the_connect_the_driver_seam_looks_for_is_pymongos() -> None:
    # A pymongo release that renames its connect would silently turn the wait back off.
    from pymongo import pool_shared

    from cqrs_mongo.mongo.driver import _CONNECTING

    assert all(callable(getattr(pool_shared, name, None)) for name in _CONNECTING)
