"""The transaction runner: re-runs a whole unit of work after transient failures, within a budget.

The MongoDB transactions specification sorts failures by label. ``TransientTransactionError``
means the transaction was aborted and may be run again from the start: the handler re-reads
state, re-decides and re-writes, in a new unit of work. A :class:`ConcurrencyError` is treated
the same way, since re-reading is what resolves it. ``UnknownTransactionCommitResult`` means
only ``commitTransaction`` may be retried; the unit of work does that itself. A driver timeout
is the caller's deadline and is never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator
from types import TracebackType
from typing import Concatenate, Generic, ParamSpec, TypeVar

from pymongo.errors import PyMongoError

from cqrs_mongo.errors import ConcurrencyError, TransactionError
from cqrs_mongo.mongo.errors import TRANSIENT_TRANSACTION_ERROR, error_labels
from cqrs_mongo.mongo.transactions.contention import ConflictQueue
from cqrs_mongo.persistence.hooks import HookEvent, notify_observers, observed
from cqrs_mongo.persistence.unit_of_work import UnitOfWork

P = ParamSpec("P")
R = TypeVar("R")
U = TypeVar("U", bound=UnitOfWork)


def backoff_delay(attempt: int, base: float = 0.005, cap: float = 1.0) -> float:
    """Full-jitter exponential backoff: a random delay in ``[0, min(cap, base * 2**attempt))``."""
    return random.uniform(0, min(cap, base * 2**attempt))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def failure_labels(exc: BaseException) -> frozenset[str]:
    """Every driver error label found on ``exc`` or the errors it was raised from."""
    labels: set[str] = set()
    for error in _chain(exc):
        labels |= error_labels(error)
        if isinstance(error, TransactionError):
            labels |= error.labels
    return frozenset(labels)


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a driver timeout."""
    return any(isinstance(e, PyMongoError) and e.timeout for e in _chain(exc))


def report_retry(uow: UnitOfWork, exc: BaseException, attempt: int) -> None:
    """Tell process-wide observers (tracing, metrics) that ``uow``'s handler runs again."""
    if not observed():
        return
    labels = sorted(failure_labels(exc))
    if any(isinstance(e, ConcurrencyError) for e in _chain(exc)):
        labels.append("ConcurrencyError")
    detail = {"labels": labels, "attempt": attempt}
    notify_observers(HookEvent("error", "uow.retry", type(uow), (), uow.source, None, exc, detail))


def is_retryable(exc: BaseException) -> bool:
    """Whether running the whole unit of work again may succeed after ``exc``."""
    if not isinstance(exc, Exception) or is_timeout(exc):
        return False
    if any(isinstance(e, ConcurrencyError) for e in _chain(exc)):
        return True
    return TRANSIENT_TRANSACTION_ERROR in failure_labels(exc)


class RetryBudget:
    """Counts attempts and time, and says when to stop.

    Attributes:
        attempts: attempts started so far.
    """

    def __init__(self, budget_seconds: float, max_attempts: int | None = None) -> None:
        self.deadline = time.monotonic() + budget_seconds
        self.budget_seconds = budget_seconds
        self.max_attempts = max_attempts
        self.attempts = 0

    def start_attempt(self) -> None:
        """Count one more attempt."""
        self.attempts += 1

    def exhausted(self) -> bool:
        """Whether no further attempt may start."""
        if self.max_attempts is not None and self.attempts >= self.max_attempts:
            return True
        return time.monotonic() >= self.deadline

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def next_delay(self) -> float:
        """The backoff before the next attempt, never past the deadline."""
        return max(0.0, min(backoff_delay(self.attempts), self.deadline - time.monotonic()))

    def give_up(self, exc: BaseException) -> TransactionError:
        """The error reporting that the budget was spent; raise it ``from exc``."""
        return TransactionError(
            f"Unit of work failed after {self.attempts} attempt(s) within "
            f"{self.budget_seconds:g} s: {exc}",
            failure_labels(exc),
            retryable=True,
            attempts=self.attempts,
        )


async def run_with_retries(
    factory: Callable[[], U],
    handler: Callable[Concatenate[U, P], Awaitable[R]],
    budget: RetryBudget,
    queue: ConflictQueue,
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """Run ``handler(uow, *args, **kwargs)`` in fresh units until one commits.

    After a retryable failure the handler waits its turn for the aggregates the failed attempt
    wrote and keeps it until it commits or gives up
    (:mod:`cqrs_mongo.mongo.transactions.contention`), so tasks of this process contending for
    one aggregate take turns instead of colliding again.

    Raises:
        TransactionError: the budget was spent on retryable failures; chained from the last.
        Exception: the handler's own error when it is not worth retrying.
    """
    async with contextlib.AsyncExitStack() as turns:
        contended: frozenset[Hashable] = frozenset()
        while True:
            budget.start_attempt()
            uow = factory()
            uow.attempt = budget.attempts
            try:
                async with uow:
                    result = await handler(uow, *args, **kwargs)
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                if budget.exhausted():
                    raise budget.give_up(exc) from exc
                report_retry(uow, exc, budget.attempts)
                wanted = contended | contention_keys(uow)
                if wanted != contended:
                    # Keep the turn across retries (a holder that loses again to a first
                    # attempt goes on holding), and re-take all keys at once, in order,
                    # when the set grows: never wait for one key while holding another.
                    await take_turns(turns, queue, wanted, budget, exc)
                    contended = wanted
                await asyncio.sleep(budget.next_delay())
                continue
            return result


async def take_turns(
    turns: contextlib.AsyncExitStack,
    queue: ConflictQueue,
    keys: frozenset[Hashable],
    budget: RetryBudget,
    failure: BaseException,
) -> None:
    """Give back the turns held in ``turns`` and take those of ``keys``, all at once (never
    waiting for one key while holding another), within the budget's remaining time.

    Raises:
        TransactionError: the turns could not be taken before the budget ran out (chained
            from the timeout; ``failure`` is the attempt's error it reports).
    """
    await turns.aclose()
    try:
        await turns.enter_async_context(queue.hold(keys, budget.remaining()))
    except TimeoutError as waited:
        raise budget.give_up(failure) from waited


def contention_keys(uow: UnitOfWork) -> frozenset[Hashable]:
    """The keys of the aggregates ``uow`` wrote through the dispatcher."""
    return frozenset(uow.touched)


class TransactionAttempts(Generic[U]):
    """``async for attempt in attempts: async with attempt as uow: ...`` until one commits.

    A retryable failure inside the block (or at its commit) is swallowed and the loop goes
    round again after a backoff; any other failure propagates and ends the loop. With a
    ``queue``, the attempts after a conflict wait their turn for the aggregates the failed
    attempt wrote, as :func:`run_with_retries` does; the turn is given back when an attempt
    commits or the loop ends with an error.
    """

    def __init__(
        self, factory: Callable[[], U], budget: RetryBudget, queue: ConflictQueue | None = None
    ) -> None:
        self._factory = factory
        self._budget = budget
        self._queue = queue
        self._finished = False
        self._delay = 0.0
        self._turns = contextlib.AsyncExitStack()
        self._contended: frozenset[Hashable] = frozenset()
        self._wanted: frozenset[Hashable] = frozenset()
        self._failure: BaseException | None = None

    def __aiter__(self) -> TransactionAttempts[U]:
        return self

    async def __anext__(self) -> Attempt[U]:
        if self._finished:
            await self._release()
            raise StopAsyncIteration
        if self._queue is not None and self._wanted != self._contended:
            failure = self._failure
            assert failure is not None  # keys are wanted only after a failed attempt
            await take_turns(self._turns, self._queue, self._wanted, self._budget, failure)
            self._contended = self._wanted
        if self._delay:
            await asyncio.sleep(self._delay)
        self._budget.start_attempt()
        self._finished = True  # until an attempt asks for another round
        uow = self._factory()
        uow.attempt = self._budget.attempts
        return Attempt(self, uow)

    async def _settle(self, exc: BaseException, uow: U) -> bool:
        """After a failed attempt: whether to go round again (else the turn is given back).

        Raises:
            TransactionError: the failure was retryable but the budget is spent.
        """
        if not is_retryable(exc):
            await self._release()
            return False
        if self._budget.exhausted():
            await self._release()
            raise self._budget.give_up(exc) from exc
        report_retry(uow, exc, self._budget.attempts)
        self._failure = exc
        self._wanted = self._contended | contention_keys(uow)
        self._finished = False
        self._delay = self._budget.next_delay()
        return True

    async def _release(self) -> None:
        self._contended = self._wanted = frozenset()
        await self._turns.aclose()


class Attempt(Generic[U]):
    """One try: enters a fresh unit of work and commits it on a clean exit."""

    def __init__(self, attempts: TransactionAttempts[U], uow: U) -> None:
        self._attempts = attempts
        self.uow = uow

    async def __aenter__(self) -> U:
        await self.uow.__aenter__()
        return self.uow

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            await self.uow.__aexit__(exc_type, exc, tb)
        except Exception as commit_exc:
            if await self._attempts._settle(commit_exc, self.uow):
                return True
            raise
        except BaseException:
            await self._attempts._release()
            raise
        if exc is None:
            await self._attempts._release()  # committed: no later attempt needs the turn
            return False
        return await self._attempts._settle(exc, self.uow)
