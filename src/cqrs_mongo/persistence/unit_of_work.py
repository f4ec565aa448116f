"""The unit of work: one transaction's lifetime as an explicit state machine.

States: ``new`` -> ``active`` -> ``committed`` | ``rolled_back`` -> ``closed``. Using it as an
async context manager begins it, commits on a clean exit and rolls back on an exception.
After-commit callbacks (cache invalidation, notifications) run only after a successful commit;
a failing callback is logged and does not undo the commit. Commit-unknown callbacks run when the
commit was attempted and did not report success (an unknown result, a write-concern error, a
cancellation while the commit was in flight), before the error propagates: it may have
committed. Rollback callbacks let writers undo in-memory effects (an aggregate's version, its
pending events) when the transaction aborts.
"""

from __future__ import annotations

import enum
import inspect
import logging
import warnings
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Self

from cqrs_mongo.errors import NonTransactionalRollbackWarning, UnitOfWorkError
from cqrs_mongo.persistence.hooks import Hooks, Observation, observe

logger = logging.getLogger("cqrs_mongo.unit_of_work")

Callback = Callable[[], Awaitable[None] | None]

# A weak reference: every timer and task created while a unit is current copies the Context,
# and a cancelled timer keeps its copy until it falls due. Holding the unit itself there kept
# each finished unit (and all it references) alive for as long as the driver's timers.
_current: ContextVar[weakref.ref[UnitOfWork] | None] = ContextVar(
    "cqrs_mongo_unit_of_work", default=None
)


def _reset_current(unit: UnitOfWork, token: Token[weakref.ref[UnitOfWork] | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:
        # Closed from another Context than the one it began in: an abandoned async
        # generator (a stream left with break) is finalised by the event loop in a task of
        # its own. The Context the unit was set in is out of reach; in this one, stop
        # naming the closed unit current.
        if _deref(_current.get()) is unit:
            previous = token.old_value
            _current.set(None if previous is Token.MISSING else previous)


def _deref(ref: weakref.ref[UnitOfWork] | None) -> UnitOfWork | None:
    return None if ref is None else ref()


def current_unit_of_work() -> UnitOfWork | None:
    """The innermost unit of work entered in this task, or ``None``."""
    unit = _deref(_current.get())
    # A unit closed from another Context (an abandoned stream finalised by the event loop)
    # could not unset itself here; the innermost unit still open is the current one.
    while unit is not None and unit.state is UnitOfWorkState.CLOSED:
        unit = unit._outer
    return unit


class UnitOfWorkState(enum.Enum):
    """Where a unit of work is in its life."""

    NEW = "new"
    ACTIVE = "active"
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"
    CLOSED = "closed"


class UnitOfWork(ABC):
    """Base of every unit of work: states, callbacks and hooks around four primitives.

    Subclasses implement ``_begin``, ``_commit``, ``_rollback`` and ``_close``. Everything a
    handler needs from its store (a session, a database) is an attribute of the subclass.

    Attributes:
        has_written: a write was attempted in this unit (readers then bypass caches).
        applied_writes: how many writes reached the store (see :meth:`note_applied_write`).
        source: the persistence source this unit belongs to, or ``None`` when unknown; the
            dispatcher refuses a unit whose source differs from the handler's.
        read_only: set before entering to say no write will happen (a Mongo unit then reads
            in a session without a transaction, so long cursors are safe).
        factory: the factory that made this unit (set by the factory), or ``None`` for a unit
            built by hand; the dispatcher knows each source's factory, so a unit of another
            source's factory is refused even when no ``source`` was given.
        attempt: which attempt of a retried handler this unit is (from 1), for observers.
    """

    def __init__(
        self, source: str | None = None, hooks: Hooks | None = None, read_only: bool = False
    ) -> None:
        self.source = source
        self.factory: Any = None
        self.read_only = read_only
        self.hooks = hooks if hooks is not None else Hooks()
        self.state = UnitOfWorkState.NEW
        self.has_written = False
        # (entity type name, id) of every aggregate the dispatcher wrote in this unit: a
        # retried handler queues for these after a conflict (the Mongo runner's contention).
        self.touched: set[tuple[str, Any]] = set()
        self.applied_writes = 0
        self._after_commit: list[Callback] = []
        self._after_commit_unknown: list[Callback] = []
        self._after_rollback: list[Callback] = []
        # id(entity) -> (entity, version before the unit's first write of it): restored on
        # rollback however many times the unit wrote the entity.
        self._versions_at_start: dict[int, tuple[Any, Any]] = {}
        self._token: Token[weakref.ref[UnitOfWork] | None] | None = None
        self._outer: UnitOfWork | None = None
        self.attempt = 1
        # Process-wide observers (tracing) see the unit from begin to close as one span.
        self._observation: Observation | None = None
        # What ended the unit: a rollback may need to know whether a write was in doubt.
        self._failure: BaseException | None = None
        # Set by ``_commit`` when the store committed with a caveat the caller must hear of
        # (MongoDB: committed without its write concern): raised once the after-commit
        # callbacks have run, the unit committed.
        self._commit_warning: Exception | None = None

    # --- the primitives a store implements -------------------------------------------------

    @abstractmethod
    async def _begin(self) -> None:
        """Start the store's transaction (or session)."""

    @abstractmethod
    async def _commit(self) -> None:
        """Make every write of the unit durable, or raise."""

    @abstractmethod
    async def _rollback(self) -> None:
        """Discard every write of the unit."""

    async def _close(self) -> None:  # noqa: B027 - optional hook with a sensible default
        """Release resources (sessions, connections)."""

    # --- lifecycle -------------------------------------------------------------------------

    async def begin(self) -> Self:
        """Start the unit.

        Raises:
            UnitOfWorkError: the unit was already started.
        """
        if self.state is not UnitOfWorkState.NEW:
            self._require(UnitOfWorkState.NEW, "begin")
        if self.hooks.watched:
            await self._begin_observed()
        else:
            await self._begin()
        self.state = UnitOfWorkState.ACTIVE
        self._outer = _deref(_current.get())
        self._token = _current.set(weakref.ref(self))
        return self

    async def _begin_observed(self) -> None:
        detail = {"read_only": self.read_only, "attempt": self.attempt}
        self._observation = observe("uow", type(self), self.source, detail)
        try:
            async with self.hooks.span("uow.begin", type(self), source=self.source):
                await self._begin()
        except BaseException as exc:
            self._end_observation(exc)
            raise
        if self._observation is not None:
            detail["in_transaction"] = bool(getattr(self, "in_transaction", False))

    async def commit(self) -> None:
        """Commit the unit, then run the after-commit callbacks.

        A store that committed with a caveat (MongoDB: without its write concern) raises it
        here, after the callbacks, the unit committed.

        Raises:
            UnitOfWorkError: the unit is not active.
            Exception: the store's own commit errors (see the store's unit of work).
        """
        if self.state is not UnitOfWorkState.ACTIVE:
            self._require(UnitOfWorkState.ACTIVE, "commit")
        try:
            if self.hooks.watched:
                async with self.hooks.span("uow.commit", type(self), source=self.source):
                    await self._commit()
            else:
                await self._commit()
        except BaseException:
            # Whatever went wrong (even a cancellation), the store may have committed.
            await self._run_callbacks(self._after_commit_unknown, "commit-unknown")
            raise
        self._after_commit_unknown.clear()
        self.state = UnitOfWorkState.COMMITTED
        if self._after_commit:
            await self._run_callbacks(self._after_commit, "after-commit")
        warning, self._commit_warning = self._commit_warning, None
        if warning is not None:
            raise warning

    async def rollback(self) -> None:
        """Discard the unit's writes, then run the rollback callbacks.

        Raises:
            UnitOfWorkError: the unit is not active.
        """
        self._require(UnitOfWorkState.ACTIVE, "roll back")
        if self.applied_writes and not self.can_roll_back:
            _warn_writes_stay(self)
        try:
            async with self.hooks.span("uow.rollback", type(self), source=self.source):
                await self._rollback()
        finally:
            self.state = UnitOfWorkState.ROLLED_BACK
            await self._run_callbacks(self._after_rollback, "after-rollback")

    async def close(self) -> None:
        """Roll back if still active, then release resources. Closing twice is harmless."""
        if self.state is UnitOfWorkState.CLOSED:
            return
        try:
            if self.state is UnitOfWorkState.ACTIVE:
                await self.rollback()
        finally:
            if self._observation is not None:
                self._observation.detail["outcome"] = self.state.value
            self.state = UnitOfWorkState.CLOSED
            if self._token is not None:
                _reset_current(self, self._token)
                self._token = None
            # Callbacks that can no longer run hold the unit itself (the version restore is
            # its bound method): dropped now, the unit is freed when its caller lets go of it
            # instead of waiting, in a reference cycle, for the garbage collector.
            self._after_rollback.clear()
            self._after_commit.clear()
            self._after_commit_unknown.clear()
            try:
                await self._close()
            finally:
                if self._observation is not None:
                    self._end_observation(self._failure)

    async def __aenter__(self) -> Self:
        return await self.begin()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._failure = exc
        try:
            if exc_type is None and self.state is UnitOfWorkState.ACTIVE:
                await self.commit()
        except BaseException as commit_failure:
            self._failure = commit_failure
            raise
        finally:
            await self.close()

    # --- what handlers use -----------------------------------------------------------------

    def on_commit(self, callback: Callback) -> None:
        """Run ``callback`` after a successful commit (never on rollback)."""
        self._require_open("register an after-commit callback")
        self._after_commit.append(callback)

    def on_commit_unknown(self, callback: Callback) -> None:
        """Run ``callback`` if the commit is attempted but does not report success.

        It then runs before the commit's error (or cancellation) propagates, because the
        transaction may have committed all the same; it may also run when it did not (the
        unit cannot always tell), so it must be harmless then, as invalidating a cache is.
        """
        self._require_open("register a commit-unknown callback")
        self._after_commit_unknown.append(callback)

    def on_rollback(self, callback: Callback) -> None:
        """Run ``callback`` after a rollback (never after a commit)."""
        self._require_open("register a rollback callback")
        self._after_rollback.append(callback)

    def keep_version_for_rollback(self, entity: Any) -> None:
        """Put ``entity.version`` back to its current value if the unit rolls back.

        Call it before a write moves the version on. Only the first call for an entity in a
        unit counts, so after several writes a rollback restores the version the entity had
        before the unit's first write of it, not the one before the last.

        Raises:
            UnitOfWorkError: the unit is already committed, rolled back or closed.
        """
        self._require_open("register a rollback callback")
        key = id(entity)
        if key in self._versions_at_start:
            return
        if not self._versions_at_start:
            self._after_rollback.append(self._restore_versions)
        # The entity itself is kept so its id() cannot be reused by another object meanwhile.
        self._versions_at_start[key] = (entity, entity.version)

    async def flush(self) -> None:  # noqa: B027 - nothing to send unless a store holds a write
        """Send any write the unit holds back (a Mongo unit may hold its one write until commit).

        Readers of the package call it before reading in a unit that has written; code of
        your own that reads, with the driver directly, what the package wrote earlier in the
        same unit should call it too. A unit that holds nothing back does nothing.
        """

    def note_applied_write(self) -> None:
        """Count a write of this unit that has reached the store.

        Without a transaction such a write stays when the unit rolls back, and the rollback
        warns (:class:`~cqrs_mongo.errors.NonTransactionalRollbackWarning`). The package's
        writers call it (``write_versioned``, the event-sourced repository); a repository of
        your own that writes with the driver directly should call it after each write.
        """
        self.applied_writes += 1

    def record_write(self) -> None:
        """Note that the unit has written (readers then bypass caches).

        Raises:
            UnitOfWorkError: the unit is not active, or was opened read-only.
        """
        if self.state is not UnitOfWorkState.ACTIVE:
            self._require(UnitOfWorkState.ACTIVE, "write")
        if self.read_only:
            raise UnitOfWorkError("Unit of work is read-only.")
        self.has_written = True

    @property
    def can_roll_back(self) -> bool:
        """Whether a rollback discards the unit's writes (false without a transaction)."""
        return True

    @property
    def is_active(self) -> bool:
        """Whether the unit has begun and not yet committed, rolled back or closed."""
        return self.state is UnitOfWorkState.ACTIVE

    # --- internals -------------------------------------------------------------------------

    def _end_observation(self, error: BaseException | None) -> None:
        observation, self._observation = self._observation, None
        if observation is not None:
            observation.detail.setdefault("outcome", self.state.value)
            observation.finish(error)

    def _require(self, state: UnitOfWorkState, action: str) -> None:
        if self.state is not state:
            raise UnitOfWorkError(f"Cannot {action}: unit of work is {self.state.value}.")

    def _require_open(self, action: str) -> None:
        if self.state not in (UnitOfWorkState.NEW, UnitOfWorkState.ACTIVE):
            raise UnitOfWorkError(f"Cannot {action}: unit of work is {self.state.value}.")

    def _restore_versions(self) -> None:
        restores, self._versions_at_start = self._versions_at_start, {}
        for entity, version in restores.values():
            entity.version = version

    async def _run_callbacks(self, callbacks: list[Callback], kind: str) -> None:
        if not callbacks:
            return
        pending, callbacks[:] = list(callbacks), []
        for callback in pending:
            try:
                outcome = callback()
                if outcome is not None and inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("%s callback %r failed; continuing.", kind, callback)


def _warn_writes_stay(uow: UnitOfWork) -> None:
    message = (
        f"{type(uow).__name__} (source {uow.source!r}) rolled back without a transaction: "
        "its writes were applied one by one and stay. Test rollback on a deployment with "
        "transactions (the embedded server: the mongo_client fixture) or in memory, and use "
        "require_transactions=True to refuse deployments without them."
    )
    logger.warning(message)
    warnings.warn(message, NonTransactionalRollbackWarning, stacklevel=4)


def advance_version(entity: Any, version: int, uow: UnitOfWork, *, durable: bool = False) -> None:
    """Move ``entity.version`` to ``version`` after a successful write in ``uow``.

    If the unit rolls back, the version goes back to what it was before the unit's *first*
    write of ``entity`` (however many writes followed); once the unit commits, the aggregate's
    pending events (if it has any) are forgotten. ``durable=True`` says the write is already
    permanent (no transaction): pending events are forgotten at once and nothing is undone.

    Raises:
        UnitOfWorkError: ``uow`` is already committed, rolled back or closed.
    """
    pending = list(getattr(entity, "pending_events", ()))
    uow.note_applied_write()
    if durable:
        entity.version = version
        if pending:
            entity.clear_pending_events(pending)
        return
    uow.keep_version_for_rollback(entity)
    entity.version = version

    def forget_persisted() -> None:
        entity.clear_pending_events(pending)

    if pending:
        uow.on_commit(forget_persisted)


async def flush_held(uow: Any) -> None:
    """``await uow.flush()`` when ``uow`` has written and can flush (any unit, or ``None``).

    Called before every read and every write the package sends directly in a unit, so that
    it comes after (and sees) a write the unit held back.
    """
    if uow is not None and getattr(uow, "has_written", False):
        flush = getattr(uow, "flush", None)
        if flush is not None:
            await flush()


UnitOfWorkFactory = Callable[[], UnitOfWork]
"""What the dispatcher's ``uow_factories`` map to: a callable returning a fresh unit."""
