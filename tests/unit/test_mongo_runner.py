"""The retry policy of the transaction runner, with fake units of work (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import NetworkTimeout, OperationFailure

from cqrs_mongo.errors import ConcurrencyError, TransactionError
from cqrs_mongo.mongo.transactions.contention import ConflictQueue
from cqrs_mongo.mongo.transactions.runner import (
    RetryBudget,
    TransactionAttempts,
    failure_labels,
    is_retryable,
    run_with_retries,
)
from cqrs_mongo.persistence import UnitOfWork


def transient() -> OperationFailure:
    return OperationFailure(
        "WriteConflict", code=112, details={"errorLabels": ["TransientTransactionError"]}
    )


class FakeUnit(UnitOfWork):
    commits = 0

    async def _begin(self) -> None:
        return None

    async def _commit(self) -> None:
        FakeUnit.commits += 1

    async def _rollback(self) -> None:
        return None


def test_labels_are_found_through_the_cause_chain() -> None:
    wrapped = ConcurrencyError("Order", "o-1", 3, None)
    wrapped.__cause__ = transient()
    assert failure_labels(wrapped) == {"TransientTransactionError"}
    assert is_retryable(wrapped)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (transient(), True),
        (ConcurrencyError("Order", "o-1", 1, 2), True),
        (TransactionError("x", ["TransientTransactionError"]), True),
        (TransactionError("x", ["UnknownTransactionCommitResult"]), False),
        (OperationFailure("bad", code=2), False),
        (ValueError("business rule"), False),
        (NetworkTimeout("slow", errors={"errorLabels": ["TransientTransactionError"]}), False),
    ],
)
def test_what_is_worth_retrying(error: BaseException, retryable: bool) -> None:
    assert is_retryable(error) is retryable


async def test_run_retries_until_success_and_returns_the_result() -> None:
    failures = [transient(), ConcurrencyError("Order", "o-1", 1, 2)]

    async def handler(uow: FakeUnit, value: int) -> int:
        if failures:
            raise failures.pop(0)
        return value * 2

    budget = RetryBudget(5.0)
    assert await run_with_retries(FakeUnit, handler, budget, ConflictQueue(), 21) == 42
    assert budget.attempts == 3


async def test_exhausted_attempts_raise_transaction_error_from_the_last_failure() -> None:
    async def handler(uow: Any) -> None:
        raise transient()

    with pytest.raises(TransactionError) as caught:
        await run_with_retries(FakeUnit, handler, RetryBudget(5.0, max_attempts=2), ConflictQueue())
    assert (caught.value.attempts, caught.value.retryable) == (2, True)
    assert caught.value.labels == {"TransientTransactionError"}
    assert isinstance(caught.value.__cause__, OperationFailure)


async def test_attempts_loop_stops_after_the_first_commit() -> None:
    FakeUnit.commits = 0
    tries = 0
    async for attempt in TransactionAttempts(FakeUnit, RetryBudget(5.0)):
        async with attempt:
            tries += 1
            if tries < 3:
                raise transient()
    assert (tries, FakeUnit.commits) == (3, 1)


async def test_attempts_loop_lets_other_errors_through() -> None:
    with pytest.raises(ValueError, match="no"):
        async for attempt in TransactionAttempts(FakeUnit, RetryBudget(5.0)):
            async with attempt:
                raise ValueError("no")
