"""Commit-unknown callbacks: they run when a commit was attempted and did not report success."""

from __future__ import annotations

import asyncio

import pytest

from cqrs_mongo import InMemoryStore, InMemoryUnitOfWork


class FailingCommit(InMemoryUnitOfWork):
    """A unit whose commit raises, or hangs until cancelled, after it may have been sent."""

    def __init__(self, error: BaseException | None = None) -> None:
        super().__init__(InMemoryStore())
        self.error = error
        self.commit_started = asyncio.Event()

    async def _commit(self) -> None:
        self.commit_started.set()
        if self.error is not None:
            raise self.error
        await asyncio.Event().wait()


async def test_a_failed_commit_runs_the_commit_unknown_callbacks_before_the_error() -> None:
    seen: list[str] = []
    uow = FailingCommit(RuntimeError("write concern error"))

    with pytest.raises(RuntimeError, match="write concern"):
        try:
            async with uow:
                uow.on_commit(lambda: seen.append("committed"))
                uow.on_commit_unknown(lambda: seen.append("maybe"))
                uow.on_rollback(lambda: seen.append("rolled back"))
        finally:
            seen.append("error reached the caller")

    assert seen == ["maybe", "rolled back", "error reached the caller"]


async def test_a_commit_cancelled_in_flight_runs_them_before_the_cancellation_propagates() -> None:
    seen: list[str] = []
    uow = FailingCommit()

    async def async_callback() -> None:
        await asyncio.sleep(0)  # a callback that awaits still completes during cancellation
        seen.append("maybe")

    async def work() -> None:
        async with uow:
            uow.on_commit_unknown(async_callback)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(work(), 0.05)

    assert uow.commit_started.is_set()
    assert seen == ["maybe"]


async def test_a_successful_commit_does_not_run_them() -> None:
    seen: list[str] = []
    async with InMemoryUnitOfWork(InMemoryStore()) as uow:
        uow.on_commit(lambda: seen.append("committed"))
        uow.on_commit_unknown(lambda: seen.append("maybe"))
    assert seen == ["committed"]
