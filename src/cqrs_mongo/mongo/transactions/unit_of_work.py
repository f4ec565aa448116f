"""The Mongo unit of work: one ClientSession and, where the deployment allows, one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, TypeVar

from pymongo.errors import ConnectionFailure, PyMongoError
from pymongo.write_concern import WriteConcern

from cqrs_mongo.errors import (
    TransactionsUnsupportedError,
)
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.errors import error_labels
from cqrs_mongo.mongo.transactions.commit_outcomes import (
    commit_error,
    commit_outcome,
    lone_write_error,
    lone_write_outcome,
    lone_write_timeout,
)
from cqrs_mongo.mongo.transactions.contention import ConflictQueue
from cqrs_mongo.mongo.transactions.deadlines import deadline_watch
from cqrs_mongo.mongo.transactions.runner import (
    RetryBudget,
    TransactionAttempts,
    _chain,
    backoff_delay,
    is_timeout,
    run_with_retries,
)
from cqrs_mongo.persistence.hooks import HookEvent, Hooks, notify_observers
from cqrs_mongo.persistence.unit_of_work import UnitOfWork, flush_held

logger = logging.getLogger("cqrs_mongo.mongo.transactions.unit_of_work")

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RETRY_BUDGET_SECONDS = 30.0
DEFAULT_TRANSACTION_TIMEOUT_SECONDS = 10.0
"""How long a transactional unit's operations may run, begin to commit (maxTimeMS)."""
DEFAULT_MAX_COMMIT_SECONDS = 5.0
"""How long one ``commitTransaction`` attempt may take (its maxTimeMS), within the budget."""
CLEANUP_SECONDS = 2.0
"""The deadline of an abort or a fence after a failure."""
MIN_COMMIT_ATTEMPT_SECONDS = 1.0
"""What the first commit attempt gets at least, however little of the budget is left."""

SingleWrite = Callable[[Any, Any, bool], Awaitable[None]]
"""One single-document write of the package: ``write(database, session, in_transaction)``.

It sends its one command to ``database`` in ``session`` and translates its own errors (a
version conflict into :class:`~cqrs_mongo.errors.ConcurrencyError`); ``in_transaction``
says whether a transaction surrounds it (a failed statement has then aborted it, so the
session can read no more).
"""


@dataclass(frozen=True, slots=True)
class UnitSettings:
    """What every unit of one factory shares (the unit's keywords), worked out once.

    Units made without ``hooks`` share one empty :class:`Hooks` per settings (as units of a
    factory given ``hooks`` share those), instead of one each.
    ``transaction_limit`` and ``commit_cap`` are the transaction's driver deadline and the
    cap on one commit attempt with the client's own ``timeoutMS`` applied (a deadline
    replaces the client's timeout, so it never lengthens it).
    """

    client: Any
    database: Any
    source: str | None
    hooks: Hooks
    require_transactions: bool
    read_concern: str | None
    write_concern: WriteConcern
    commit_budget_seconds: float
    transaction_timeout_seconds: float | None
    max_commit_seconds: float
    transaction_limit: float | None
    commit_cap: float | None

    @classmethod
    def of(
        cls,
        client: Any,
        database: Any,
        *,
        source: str | None,
        hooks: Hooks | None,
        require_transactions: bool,
        read_concern: str | None,
        write_concern: WriteConcern | None,
        commit_budget_seconds: float,
        transaction_timeout_seconds: float | None,
        max_commit_seconds: float,
    ) -> UnitSettings:
        """The settings of units over ``client`` and ``database`` with these keywords."""
        client_timeout = driver.client_timeout(client)
        return cls(
            client=client,
            database=database,
            source=source,
            hooks=hooks if hooks is not None else Hooks(),
            require_transactions=require_transactions,
            read_concern=read_concern,
            write_concern=write_concern or driver.MAJORITY,
            commit_budget_seconds=commit_budget_seconds,
            transaction_timeout_seconds=transaction_timeout_seconds,
            max_commit_seconds=max_commit_seconds,
            transaction_limit=(
                None
                if transaction_timeout_seconds is None
                else driver.shortest(transaction_timeout_seconds, client_timeout)
            ),
            commit_cap=driver.shortest(max_commit_seconds, client_timeout),
        )


class MongoUnitOfWork(UnitOfWork):
    """A unit of work over one session; a transaction when the deployment supports them.

    Entering starts a session and, on a replica set or sharded cluster, a transaction with
    majority write concern, ``read_concern`` (``"snapshot"`` by default) and primary reads.
    Leaving commits, or aborts on error. A ``read_only`` unit starts a session without a
    transaction, so long cursors do not run into the transaction lifetime limit. Where the
    deployment has no transactions (mongomock, a standalone server) writes apply at once and
    cannot be rolled back: this is logged once per client, and ``require_transactions=True``
    refuses to begin instead.

    Time limits (a failed or hung unit must not keep its documents locked): the operations of
    a transactional unit run under one driver deadline of ``transaction_timeout_seconds``
    (default 10 s; ``None`` for none), which the driver also sends to the server as
    ``maxTimeMS``; each ``commitTransaction`` attempt is bounded by ``max_commit_seconds``
    (default 5 s, its ``maxTimeMS``) and the commit's retries by ``commit_budget_seconds``
    (the factory's ``retry_budget_seconds``; the first attempt gets at least 1 s),
    all kept by the driver's timeout machinery (``pymongo.timeout``), not by polling. Every
    failure ends the server transaction explicitly: ``abortTransaction``, or, when a write or
    the commit may still be in flight (a timeout, a dropped connection, a cancellation, an
    unknown commit outcome), a fence (see :func:`driver.fence_transaction`).

    One write, no transaction: a unit whose only operation is one single-document write of
    the package (:func:`~cqrs_mongo.mongo.write_versioned`, or an append of one event at an
    exact version with no snapshot) sends it at commit as one retryable write with the
    unit's write concern and no transaction: 1 command instead of 2. The package holds such
    a write back (:meth:`write_single`) until the unit commits, or until it does anything
    else: a second write, a read through the package or the dispatcher, or :meth:`flush`
    sends it inside the transaction, which then commits as usual. The transaction starts
    (client-side, no round trip) when anything first asks for :attr:`session`, so the session
    used directly is in it, and any statement sent in it before commit makes the unit commit
    a transaction; a unit that never asks starts none. Reads before the first write are in
    the transaction's snapshot as before. The lone write is bounded by
    ``max_commit_seconds`` on the client (see :mod:`deadlines`), not by the driver's
    deadline. Code of your own that reads, with the driver, what the package wrote earlier
    in the same unit calls ``await uow.flush()`` first (the dispatcher does it before every
    handler it calls). The outcome of the lone write is reported like a commit's: a
    conflict is a :class:`ConcurrencyError` (the runner re-runs the handler), a write
    concern error a :class:`CommittedWithWriteConcernError`, and an error after which the
    write may or may not have been applied (a dropped connection or timeout after the
    driver's own retry, a retryable error twice) a :class:`CommitOutcomeUnknownError`,
    never retried by re-sending.

    Commit outcomes (the transactions specification's), as :meth:`commit` reports them:
    committed; not committed (:class:`TransactionError`, ``retryable`` when labelled
    ``TransientTransactionError``); unknown once the budget is spent
    (:class:`CommitOutcomeUnknownError`, rolled back in memory); committed without the write
    concern (:class:`CommittedWithWriteConcernError`, raised after the commit's callbacks,
    state kept).

    Attributes:
        client: the driver client (pymongo async, Motor or mongomock-motor).
        database: the database handle, with the package's codec options.
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
        transaction_timeout_seconds: float | None = DEFAULT_TRANSACTION_TIMEOUT_SECONDS,
        max_commit_seconds: float = DEFAULT_MAX_COMMIT_SECONDS,
    ) -> None:
        settings = UnitSettings.of(
            client,
            database if database is not None else driver.get_database(client, database_name),
            source=source,
            hooks=hooks,
            require_transactions=require_transactions,
            read_concern=read_concern,
            write_concern=write_concern,
            commit_budget_seconds=commit_budget_seconds,
            transaction_timeout_seconds=transaction_timeout_seconds,
            max_commit_seconds=max_commit_seconds,
        )
        self._setup(settings, read_only)

    @classmethod
    def _made_by(cls, factory: MongoUnitOfWorkFactory, *, read_only: bool) -> MongoUnitOfWork:
        # The factory's units share one UnitSettings: nothing of it is worked out (or passed
        # as a dozen keywords) again for every unit.
        unit = cls.__new__(cls)
        unit._setup(factory._settings_for_units(), read_only)
        unit.factory = factory
        return unit

    def _setup(self, settings: UnitSettings, read_only: bool) -> None:
        super().__init__(source=settings.source, hooks=settings.hooks, read_only=read_only)
        self._settings = settings
        self.client = settings.client
        self.database = settings.database
        self._session: Any | None = None
        # A transactional unit starts its transaction when something first needs it (see
        # the ``session`` property), not at begin: a unit whose only operation is one held
        # write never starts one.
        self._transaction_pending = False
        self.in_transaction = False
        self._deadline: contextlib.AbstractContextManager[Any] | None = None
        self._outcome_unknown = False
        self._committed = False
        self._transactional = False
        self._held: SingleWrite | None = None

    @property
    def require_transactions(self) -> bool:
        """Whether beginning on a deployment without transactions raises."""
        return self._settings.require_transactions

    @property
    def read_concern(self) -> str | None:
        """The transaction's read concern level."""
        return self._settings.read_concern

    @property
    def write_concern(self) -> WriteConcern:
        """The write concern of the transaction's commit and of a lone write."""
        return self._settings.write_concern

    @property
    def commit_budget_seconds(self) -> float:
        """How long the commit's retries may take altogether."""
        return self._settings.commit_budget_seconds

    @property
    def transaction_timeout_seconds(self) -> float | None:
        """The driver deadline of a transactional unit's operations (``None``: none)."""
        return self._settings.transaction_timeout_seconds

    @property
    def max_commit_seconds(self) -> float:
        """How long one commit attempt (or the lone write) may take."""
        return self._settings.max_commit_seconds

    @property
    def session(self) -> Any | None:
        """The driver session while the unit is active (``None`` on mongomock).

        In a transactional unit, asking for it starts the unit's transaction (client-side:
        no round trip) if it has not started yet, so every statement sent with
        ``session=uow.session`` runs in the transaction. A unit that never asks (its only
        operation is one write the package holds back) never starts one.

        Raises:
            TransactionError: the driver could not start the transaction at once.
        """
        if self._transaction_pending:
            settings = self._settings
            driver.start_transaction_now(
                self._session,
                read_concern=settings.read_concern,
                write_concern=settings.write_concern,
            )
            self._transaction_pending = False  # only once started: never a session without
        return self._session

    @session.setter
    def session(self, session: Any | None) -> None:
        self._session = session
        self._transaction_pending = False

    @property
    def can_roll_back(self) -> bool:
        """Whether a rollback discards the unit's writes: only inside a transaction."""
        return self.in_transaction

    def collection(self, name: str) -> Any:
        """The collection ``name`` of this unit's database (pass ``session=uow.session``)."""
        return self.database[name]

    async def write_single(self, write: SingleWrite) -> None:
        """Run one single-document write of the package, or hold it back until commit.

        In a transactional unit whose transaction has sent nothing yet, the write is held:
        if nothing else happens before commit, it is sent then as one retryable write with
        no transaction. Otherwise (a write already held, a statement already sent, no
        transactions at all) any held write is sent first and this one runs at once.

        Raises:
            ConcurrencyError: (when run at once) the write's version check failed.
        """
        if self._held is None and self._transactional and self._sent_nothing():
            self._held = write
            return
        await self.flush()
        await write(self.database, self.session, self.in_transaction)

    def _sent_nothing(self) -> bool:
        # No statement of the unit has gone out in its transaction (or it has none yet).
        return self._transaction_pending or driver.transaction_is_untouched(self._session)

    async def flush(self) -> None:
        """Send the write the unit holds back (see :meth:`write_single`), in its transaction.

        The unit then commits as a transaction. Call it before reading, with the driver
        directly, what the package wrote earlier in the same unit.

        Raises:
            ConcurrencyError: the held write's version check failed.
        """
        write, self._held = self._held, None
        if write is not None:
            await write(self.database, self.session, True)

    async def _begin(self) -> None:
        settings = self._settings
        caps = driver.known_capabilities(self.client) or await driver.capabilities(self.client)
        if not caps.transactions:
            if settings.require_transactions:
                raise TransactionsUnsupportedError(
                    f"Transactions are required, but the {caps.topology} deployment "
                    "does not support them."
                )
            _warn_once(self.client, caps.topology)
        self._session = await driver.start_session(self.client, caps)
        if caps.transactions and not self.read_only:
            self._transaction_pending = True
            self.in_transaction = self._transactional = True
            limit = settings.transaction_limit
            if limit is not None:
                # Every operation of the unit runs under this driver deadline, which the
                # driver sends to the server as maxTimeMS: no statement of the transaction
                # outlives it, so a hung unit cannot hold its documents for the server's
                # 60 s transaction lifetime. Left again before commit and rollback.
                self._deadline = driver.deadline(limit)
                self._deadline.__enter__()

    @property
    def may_have_committed(self) -> bool:
        """Whether the unit's writes may be durable: committed, or a commit sent unanswered.

        ``True`` once ``commitTransaction`` was sent and has not been answered with a clear
        "not committed" (it succeeded, it committed without its write concern, its outcome
        is unknown, or the caller was cancelled while it was in flight), and for a unit
        without a transaction that has written (its writes applied one by one). Caches use
        it to invalidate on every outcome that may have committed, before the error
        propagates.
        """
        if not self._transactional:
            return self.has_written
        return self._committed or self._outcome_unknown

    async def _commit(self) -> None:
        if self._held is not None and not self._sent_nothing():
            await self.flush()  # something else ran in the transaction: the write joins it
        self._leave_deadline()
        if not self.in_transaction:
            return
        if self._held is not None:
            await self._write_alone()
            return
        if self._transaction_pending:
            # Nothing asked for the transaction, so nothing was sent in it: done.
            self._transaction_pending = False
            self._committed = True
            return
        deadline = time.monotonic() + self._settings.commit_budget_seconds
        attempt = 0
        # From here until an answer is classified, the commit may have reached the server.
        self._outcome_unknown = True
        while True:
            attempt += 1
            # Each attempt is bounded by the driver's deadline (server selection, its own
            # retry, the reply; maxTimeMS on the server) at the budget's remainder.
            per_attempt = self._attempt_seconds(deadline - time.monotonic())
            try:
                await driver.commit_transaction(self._session, deadline_seconds=per_attempt)
            except PyMongoError as exc:
                outcome = commit_outcome(exc)
                if outcome == "unknown":
                    # commitTransaction is idempotent for the same session and transaction
                    # number (transactions spec), so only the commit is retried.
                    pause = min(backoff_delay(attempt), deadline - time.monotonic())
                    if pause > 0:
                        self._observe_commit_retry(exc, attempt)
                        await asyncio.sleep(pause)
                        continue
                    raise commit_error(exc, attempt) from exc
                self._outcome_unknown = False
                if outcome == "committed":
                    self._committed = True
                    self._commit_warning = commit_error(exc, attempt)
                    self._commit_warning.__cause__ = exc
                    return
                raise commit_error(exc, attempt) from exc
            self._outcome_unknown = False
            self._committed = True
            return

    def _attempt_seconds(self, remaining: float) -> float:
        # How long one commit attempt (or the lone write) may take: a nearly spent budget
        # still leaves it time to answer; an explicit cap (max_commit_seconds, the client's
        # timeoutMS) is never exceeded.
        per_attempt = max(MIN_COMMIT_ATTEMPT_SECONDS, remaining)
        cap = self._settings.commit_cap
        return per_attempt if cap is None else min(per_attempt, cap)

    async def _write_alone(self) -> None:
        # The unit's only operation is one single-document write: atomic by itself, so it
        # goes as one retryable write instead of a transaction of one statement. A
        # transaction something asked for but sent nothing in ends client-side (the server
        # never heard of it); usually none was started.
        write, self._held = self._held, None
        assert write is not None
        if self._transaction_pending:
            self._transaction_pending = False  # never started: nothing to end
        else:
            await driver.drop_untouched_transaction(self._session)
        per_attempt = self._attempt_seconds(self._settings.commit_budget_seconds)
        # From here until the reply is classified, the write may have been applied.
        self._outcome_unknown = True
        # Bounded by a client-side limit, not the driver's deadline (pymongo.timeout): under
        # a deadline the async driver sends each command through asyncio.wait_for, an extra
        # task and three more turns of the event loop, which cost a one-document write 12% of
        # its client instructions (callgrind, the bench's update: 1.06M vs 0.94M per write);
        # and by the loop's one deadline watch rather than asyncio.timeout (see deadlines).
        # The write holds nothing on the server once it ends; the driver retries it once, as
        # any retryable write; a limit that expires is an unknown outcome as a driver timeout
        # is (the driver closes the connection it was cancelled on; the unit fences the
        # session; nothing sends the write again).
        session, database = self._session, self._lone_write_database()
        try:
            if driver.cancellable(session):
                # The loop's deadline watch: a write still running after ``per_attempt`` is
                # cancelled, and reported as the driver reports its own timeouts.
                watch = deadline_watch()
                watched = watch.start(per_attempt, busy=driver.opening_connection)
                try:
                    try:
                        await write(database, session, False)
                    finally:
                        expired = watch.finish(watched)
                except asyncio.CancelledError as exc:
                    if expired:
                        raise lone_write_timeout(per_attempt) from exc
                    raise
            else:
                # Motor runs the driver in a thread that a cancellation would leave running,
                # still using the session the unit then fences: its deadline bounds it there.
                with driver.deadline(per_attempt):
                    await write(database, session, False)
        except PyMongoError as exc:
            outcome = lone_write_outcome(exc)
            if outcome == "unknown":
                raise lone_write_error(exc) from exc
            self._outcome_unknown = False
            if outcome == "committed":
                self._committed = True
                self._commit_warning = lone_write_error(exc)
                self._commit_warning.__cause__ = exc
                return
            raise
        except Exception:
            # Translated by the write itself (a version conflict, an unstorable document):
            # the server refused it, or it never left.
            self._outcome_unknown = False
            raise
        self._outcome_unknown = False
        self._committed = True

    def _lone_write_database(self) -> Any:
        # The database handle with the unit's write concern (a transaction carries it for
        # its statements; a write without one takes it from its collection).
        factory = self.factory
        if isinstance(factory, MongoUnitOfWorkFactory) and factory.database is self.database:
            return factory.lone_write_database()
        return self.database.with_options(write_concern=self._settings.write_concern)

    def _observe_commit_retry(self, exc: PyMongoError, attempt: int) -> None:
        # Process-wide observers (tracing, metrics) see each commit retry with its labels.
        if self._observation is None:
            return
        self._observation.detail["commit_attempts"] = attempt + 1
        detail = {"labels": sorted(error_labels(exc)), "attempt": attempt}
        notify_observers(
            HookEvent("error", "uow.commit_retry", type(self), (), self.source, None, exc, detail)
        )

    async def _rollback(self) -> None:
        self._held = None  # never sent: nothing of it reached the server
        self._leave_deadline()
        if not self.in_transaction:
            return
        if self._in_doubt():
            # A write or the commit may still be on its way to the server, or be held there:
            # an abort could miss it, and ending the session does not end it on the server.
            driver.mark_session_dirty(self._session)
            await driver.fence_transaction(
                self._session, self.database, deadline_seconds=CLEANUP_SECONDS
            )
        elif self._session is not None and self._session.in_transaction:
            try:
                await driver.abort_transaction(self._session, deadline_seconds=CLEANUP_SECONDS)
            except PyMongoError as exc:  # the server ends it at its lifetime limit anyway
                logger.warning("abortTransaction failed: %r", exc)

    async def _close(self) -> None:
        self._leave_deadline()
        session, self._session = self._session, None
        self._transaction_pending = False
        self.in_transaction = False
        await driver.end_session(session)

    def _leave_deadline(self) -> None:
        deadline, self._deadline = self._deadline, None
        if deadline is not None:
            # Not contextlib.suppress: that builds a context manager for every unit.
            try:  # noqa: SIM105
                deadline.__exit__(None, None, None)
            except ValueError:
                pass  # left in another context (a unit closed by a finalizer): nothing to restore

    def _in_doubt(self) -> bool:
        if self._outcome_unknown or driver.session_is_dirty(self._session):
            return True
        failure = self._failure
        if failure is None:
            return False
        if not isinstance(failure, Exception):  # cancelled mid-operation
            return True
        return is_timeout(failure) or any(
            isinstance(error, ConnectionFailure) for error in _chain(failure)
        )


async def send_write(write: SingleWrite, uow: Any, database: Any, *, single: bool) -> None:
    """Send one write of the package in ``uow`` (which may be ``None``).

    A ``single``-document write goes to :meth:`MongoUnitOfWork.write_single`, which may hold
    it back and send it alone at commit; any other write (or a unit without that seam) goes
    now, after whatever the unit holds back, to ``database`` in the unit's session (asked for
    only then: asking starts a Mongo unit's transaction).
    """
    hold = getattr(uow, "write_single", None) if single else None
    if hold is not None:
        await hold(write)
        return
    await flush_held(uow)
    await write(database, session_of(uow), bool(getattr(uow, "in_transaction", False)))


def session_of(uow: Any) -> Any:
    """The session of ``uow`` (``None`` without a unit, or on a store without sessions).

    Asking a Mongo unit for it starts the unit's transaction (see
    :attr:`MongoUnitOfWork.session`).
    """
    return getattr(uow, "session", None) if uow is not None else None


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


class CollectionHandles(dict[str, Any]):
    """``database[name]`` for a fixed database, each collection handle made once.

    A dict (a hit is a plain lookup, no Python call) that makes a missing handle on demand.
    """

    def __init__(self, database: Any) -> None:
        super().__init__()
        self.database = database

    def __missing__(self, name: str) -> Any:
        handle = self[name] = self.database[name]
        return handle


_UNIT_SETTINGS = frozenset(
    {
        "client",
        "database",
        "source",
        "hooks",
        "require_transactions",
        "read_concern",
        "write_concern",
        "retry_budget_seconds",
        "transaction_timeout_seconds",
        "max_commit_seconds",
    }
)
"""The factory's attributes its units' :class:`UnitSettings` are made of."""


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
        transaction_timeout_seconds: float | None = DEFAULT_TRANSACTION_TIMEOUT_SECONDS,
        max_commit_seconds: float = DEFAULT_MAX_COMMIT_SECONDS,
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
        # run(): a handler that lost a conflict waits its turn for the aggregates it wrote.
        self.conflicts = ConflictQueue()
        self.transaction_timeout_seconds = transaction_timeout_seconds
        self.max_commit_seconds = max_commit_seconds
        self._lone_database: Any = None
        self._unit_settings: UnitSettings | None = None

    def lone_write_database(self) -> Any:
        """The database with the units' write concern, for a write sent without a transaction.

        Its collection handles are made once (building a pymongo collection costs about as
        much client CPU as encoding the one document it then writes).
        """
        if self._lone_database is None:
            concern = self.write_concern or driver.MAJORITY
            self._lone_database = CollectionHandles(
                self.database.with_options(write_concern=concern)
            )
        return self._lone_database

    @property
    def location(self) -> tuple[str, int, str]:
        """Where this factory's units write (client and database), for the source check."""
        return ("mongo", id(self.client), self.database_name)

    def __call__(self, *, read_only: bool = False) -> MongoUnitOfWork:
        """A fresh unit of work (not yet begun), stamped with this factory as its origin."""
        return MongoUnitOfWork._made_by(self, read_only=read_only)

    def _settings_for_units(self) -> UnitSettings:
        """What this factory's units share, made once (and again after a setting changes)."""
        settings = self._unit_settings
        if settings is None:
            settings = self._unit_settings = UnitSettings.of(
                self.client,
                self.database,
                source=self.source,
                hooks=self.hooks,
                require_transactions=self.require_transactions,
                read_concern=self.read_concern,
                write_concern=self.write_concern,
                commit_budget_seconds=self.retry_budget_seconds,
                transaction_timeout_seconds=self.transaction_timeout_seconds,
                max_commit_seconds=self.max_commit_seconds,
            )
        return settings

    def __setattr__(self, name: str, value: Any) -> None:
        # A setting changed after the first unit: the next unit sees it (settings, and the
        # lone writes' database handle, are made once per factory, not once per unit).
        object.__setattr__(self, name, value)
        if name in _UNIT_SETTINGS:
            object.__setattr__(self, "_unit_settings", None)
            object.__setattr__(self, "_lone_database", None)

    async def run(
        self,
        handler: Callable[Concatenate[MongoUnitOfWork, P], Awaitable[R]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run ``await handler(uow, *args, **kwargs)`` in a fresh unit and commit it.

        ``transaction_timeout_seconds`` and ``max_commit_seconds`` bound each unit (see
        :class:`MongoUnitOfWork`).

        The whole handler runs again, in a new unit, after a failure labelled
        ``TransientTransactionError`` or a :class:`ConcurrencyError` (the handler re-reads
        state); a commit whose outcome is unknown is retried alone. Retries back off with
        jitter until ``retry_budget_seconds`` (or ``max_attempts``) is spent. A retry after a
        conflict waits its turn for the aggregates the failed attempt wrote, so tasks of this
        process hammering one aggregate take turns instead of colliding (``conflicts``).

        A driver timeout (``timeoutMS``, ``socketTimeoutMS``: the error's ``timeout`` is true)
        is the caller's deadline: it is never retried and propagates as the driver raised it
        (wrapped in a :class:`TransactionError` only when it hit ``commitTransaction``).

        Raises:
            TransactionError: the retry budget was spent (``retryable`` true, ``labels`` and
                ``attempts`` set), or the commit failed for good; chained from the last error.
            Exception: whatever the handler raised, when it is not worth retrying.
        """
        return await run_with_retries(
            self, handler, self._budget(), self.conflicts, *args, **kwargs
        )

    def transaction(self) -> TransactionAttempts[MongoUnitOfWork]:
        """Attempts to run a block in a unit of work until one commits (retried, and queued
        after a conflict, as :meth:`run` is).

        Example:
            >>> async for attempt in factory.transaction():  # doctest: +SKIP
            ...     async with attempt as uow:
            ...         ...
        """
        return TransactionAttempts(self, self._budget(), self.conflicts)

    def _budget(self) -> RetryBudget:
        return RetryBudget(self.retry_budget_seconds, self.max_attempts)
