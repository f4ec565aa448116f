"""The Mongo unit of work: one ClientSession and, where the deployment allows, one transaction."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from pymongo.errors import PyMongoError
from pymongo.write_concern import WriteConcern

from cqrs_mongo.errors import TransactionError, TransactionsUnsupportedError
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.errors import (
    TRANSIENT_TRANSACTION_ERROR,
    UNKNOWN_COMMIT_RESULT,
    error_labels,
)
from cqrs_mongo.mongo.transactions.runner import (
    RetryBudget,
    TransactionAttempts,
    backoff_delay,
    run_with_retries,
)
from cqrs_mongo.persistence.hooks import Hooks
from cqrs_mongo.persistence.unit_of_work import UnitOfWork

logger = logging.getLogger("cqrs_mongo.mongo.transactions.unit_of_work")

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RETRY_BUDGET_SECONDS = 30.0


class MongoUnitOfWork(UnitOfWork):
    """A unit of work over one session; a transaction when the deployment supports them.

    Entering starts a session and, on a replica set or sharded cluster, a transaction with
    majority write concern, ``read_concern`` (``"snapshot"`` by default) and primary reads.
    Leaving commits, or aborts on error. A ``read_only`` unit starts a session without a
    transaction, so long cursors do not run into the transaction lifetime limit. Where the
    deployment has no transactions (mongomock, a standalone server) writes apply at once and
    cannot be rolled back: this is logged once per client, and ``require_transactions=True``
    refuses to begin instead.

    Attributes:
        client: the driver client (pymongo async, Motor or mongomock-motor).
        database: the database handle, with the package's codec options.
        session: the driver session while active; ``None`` on mongomock.
        in_transaction: whether the unit runs inside a multi-document transaction.
    """

    def __init__(
        self,
        client: Any,
        database_name: str,
        *,
        source: str | None = None,
        hooks: Hooks | None = None,
        read_only: bool = False,
        require_transactions: bool = False,
        read_concern: str | None = "snapshot",
        write_concern: WriteConcern | None = None,
        commit_budget_seconds: float = DEFAULT_RETRY_BUDGET_SECONDS,
        database: Any = None,
    ) -> None:
        super().__init__(source=source, hooks=hooks, read_only=read_only)
        self.client = client
        self.database = (
            database if database is not None else driver.get_database(client, database_name)
        )
        self.session: Any | None = None
        self.in_transaction = False
        self.require_transactions = require_transactions
        self.read_concern = read_concern
        self.write_concern = write_concern or WriteConcern("majority")
        self.commit_budget_seconds = commit_budget_seconds
        self._commit_sent = False

    @property
    def can_roll_back(self) -> bool:
        """Whether a rollback discards the unit's writes: only inside a transaction."""
        return self.in_transaction

    def collection(self, name: str) -> Any:
        """The collection ``name`` of this unit's database (pass ``session=uow.session``)."""
        return self.database[name]

    async def _begin(self) -> None:
        caps = await driver.capabilities(self.client)
        if not caps.transactions:
            if self.require_transactions:
                raise TransactionsUnsupportedError(
                    f"Transactions are required, but the {caps.topology} deployment "
                    "does not support them."
                )
            _warn_once(self.client, caps.topology)
        self.session = await driver.start_session(self.client)
        if caps.transactions and not self.read_only:
            try:
                await driver.start_transaction(
                    self.session, read_concern=self.read_concern, write_concern=self.write_concern
                )
            except BaseException:
                await driver.end_session(self.session)
                self.session = None
                raise
            self.in_transaction = True

    async def _commit(self) -> None:
        if not self.in_transaction:
            return
        self._commit_sent = True
        deadline = time.monotonic() + self.commit_budget_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                await driver.commit_transaction(self.session)
                return
            except PyMongoError as exc:
                labels = error_labels(exc)
                # commitTransaction is idempotent for the same session and transaction number
                # (transactions spec), so only the commit is retried, never the writes.
                if UNKNOWN_COMMIT_RESULT in labels and time.monotonic() < deadline:
                    await asyncio.sleep(backoff_delay(attempt))
                    continue
                raise commit_error(exc, attempt) from exc

    async def _rollback(self) -> None:
        # After a commit was sent the driver refuses abortTransaction; ending the session
        # (in _close) releases whatever the server still holds.
        if self.in_transaction and not self._commit_sent:
            await driver.abort_transaction(self.session)

    async def _close(self) -> None:
        session, self.session = self.session, None
        self.in_transaction = False
        await driver.end_session(session)


def commit_error(exc: PyMongoError, attempts: int) -> TransactionError:
    """The :class:`TransactionError` reporting a failed ``commitTransaction``."""
    labels = error_labels(exc)
    outcome = "may have committed" if UNKNOWN_COMMIT_RESULT in labels else "did not commit"
    return TransactionError(
        f"Transaction {outcome} after {attempts} commit attempt(s): {exc}",
        labels,
        retryable=TRANSIENT_TRANSACTION_ERROR in labels,
        attempts=attempts,
    )


def _warn_once(client: Any, topology: str) -> None:
    # One warning per client that cannot run transactions, not one per unit of work.
    if not driver.first_time(client):
        return
    logger.warning(
        "The %s deployment has no multi-document transactions: writes of a unit of work "
        "apply one by one and cannot be rolled back. Pass require_transactions=True to "
        "MongoUnitOfWorkFactory to refuse such deployments instead.",
        topology,
    )


class MongoUnitOfWorkFactory:
    """Makes :class:`MongoUnitOfWork` instances, and runs handlers in them with retries.

    Calling the factory with no arguments returns a fresh unit; that is what goes into
    ``PersistenceDispatcher(uow_factories={...})``. :meth:`run` executes a handler in a unit
    and re-runs it on transient failures.

    Example:
        >>> factory = MongoUnitOfWorkFactory(client, "shop", source="default")  # doctest: +SKIP
        >>> async with factory() as uow:  # doctest: +SKIP
        ...     await uow.collection("orders").insert_one({"_id": 1}, session=uow.session)
    """

    def __init__(
        self,
        client: Any,
        database_name: str,
        *,
        source: str | None = None,
        require_transactions: bool = False,
        read_concern: str | None = "snapshot",
        write_concern: WriteConcern | None = None,
        hooks: Hooks | None = None,
        retry_budget_seconds: float = DEFAULT_RETRY_BUDGET_SECONDS,
        max_attempts: int | None = None,
    ) -> None:
        self.client = client
        self.database_name = database_name
        self.database = driver.get_database(client, database_name)
        self.source = source
        self.require_transactions = require_transactions
        self.read_concern = read_concern
        self.write_concern = write_concern
        self.hooks = hooks
        self.retry_budget_seconds = retry_budget_seconds
        self.max_attempts = max_attempts

    @property
    def location(self) -> tuple[str, int, str]:
        """Where this factory's units write (client and database), for the source check."""
        return ("mongo", id(self.client), self.database_name)

    def __call__(self, *, read_only: bool = False) -> MongoUnitOfWork:
        """A fresh unit of work (not yet begun), stamped with this factory as its origin."""
        unit = MongoUnitOfWork(
            self.client,
            self.database_name,
            source=self.source,
            hooks=self.hooks,
            read_only=read_only,
            require_transactions=self.require_transactions,
            read_concern=self.read_concern,
            write_concern=self.write_concern,
            commit_budget_seconds=self.retry_budget_seconds,
            database=self.database,
        )
        unit.factory = self
        return unit

    async def run(
        self,
        handler: Callable[Concatenate[MongoUnitOfWork, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run ``await handler(uow, *args, **kwargs)`` in a fresh unit and commit it.

        The whole handler runs again, in a new unit, after a failure labelled
        ``TransientTransactionError`` or a :class:`ConcurrencyError` (the handler re-reads
        state); a commit whose outcome is unknown is retried alone. Retries back off with
        jitter until ``retry_budget_seconds`` (or ``max_attempts``) is spent.

        A driver timeout (``timeoutMS``, ``socketTimeoutMS``: the error's ``timeout`` is true)
        is the caller's deadline: it is never retried and propagates as the driver raised it
        (wrapped in a :class:`TransactionError` only when it hit ``commitTransaction``).

        Raises:
            TransactionError: the retry budget was spent (``retryable`` true, ``labels`` and
                ``attempts`` set), or the commit failed for good; chained from the last error.
            Exception: whatever the handler raised, when it is not worth retrying.
        """
        return await run_with_retries(self, handler, self._budget(), *args, **kwargs)

    def transaction(self) -> TransactionAttempts[MongoUnitOfWork]:
        """Attempts to run a block in a unit of work until one commits.

        Example:
            >>> async for attempt in factory.transaction():  # doctest: +SKIP
            ...     async with attempt as uow:
            ...         ...
        """
        return TransactionAttempts(self, self._budget())

    def _budget(self) -> RetryBudget:
        return RetryBudget(self.retry_budget_seconds, self.max_attempts)
