"""The unit of work: one transaction's lifetime as an explicit state machine.

States: ``new`` -> ``active`` -> ``committed`` | ``rolled_back`` -> ``closed``. Using it as an
async context manager begins it, commits on a clean exit and rolls back on an exception.
After-commit callbacks (cache invalidation, notifications) run only after a successful commit;
a failing callback is logged and does not undo the commit. Rollback callbacks let writers undo
in-memory effects (an aggregate's version, its pending events) when the transaction aborts.
"""

from __future__ import annotations

import enum
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Self

from cqrs_mongo.errors import UnitOfWorkError
from cqrs_mongo.persistence.hooks import Hooks

logger = logging.getLogger("cqrs_mongo.unit_of_work")

Callback = Callable[[], Awaitable[None] | None]

_current: ContextVar[UnitOfWork | None] = ContextVar("cqrs_mongo_unit_of_work", default=None)


def _reset_current(unit: UnitOfWork, token: Token[UnitOfWork | None]) -> None:
    try:
        _current.reset(token)
    except ValueError:
        # Closed from another Context than the one it began in: an abandoned async
        # generator (a stream left with break) is finalised by the event loop in a task of
        # its own. The Context the unit was set in is out of reach; in this one, stop
        # naming the closed unit current.
        if _current.get() is unit:
            previous = token.old_value
            _current.set(None if previous is Token.MISSING else previous)


def current_unit_of_work() -> UnitOfWork | None:
    """The innermost unit of work entered in this task, or ``None``."""
    unit = _current.get()
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
        source: the persistence source this unit belongs to, or ``None`` when unknown; the
            dispatcher refuses a unit whose source differs from the handler's.
        read_only: set before entering to say no write will happen (a Mongo unit then reads
            in a session without a transaction, so long cursors are safe).
    """

    def __init__(
        self, source: str | None = None, hooks: Hooks | None = None, read_only: bool = False
    ) -> None:
        self.source = source
        self.read_only = read_only
        self.hooks = hooks if hooks is not None else Hooks()
        self.state = UnitOfWorkState.NEW
        self.has_written = False
        self._after_commit: list[Callback] = []
        self._after_rollback: list[Callback] = []
        self._token: Token[UnitOfWork | None] | None = None
        self._outer: UnitOfWork | None = None

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
        self._require(UnitOfWorkState.NEW, "begin")
        async with self.hooks.span("uow.begin", type(self), source=self.source):
            await self._begin()
        self.state = UnitOfWorkState.ACTIVE
        self._outer = _current.get()
        self._token = _current.set(self)
        return self

    async def commit(self) -> None:
        """Commit the unit, then run the after-commit callbacks.

        Raises:
            UnitOfWorkError: the unit is not active.
        """
        self._require(UnitOfWorkState.ACTIVE, "commit")
        async with self.hooks.span("uow.commit", type(self), source=self.source):
            await self._commit()
        self.state = UnitOfWorkState.COMMITTED
        await self._run_callbacks(self._after_commit, "after-commit")

    async def rollback(self) -> None:
        """Discard the unit's writes, then run the rollback callbacks.

        Raises:
            UnitOfWorkError: the unit is not active.
        """
        self._require(UnitOfWorkState.ACTIVE, "roll back")
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
            self.state = UnitOfWorkState.CLOSED
            if self._token is not None:
                _reset_current(self, self._token)
                self._token = None
            await self._close()

    async def __aenter__(self) -> Self:
        return await self.begin()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None and self.state is UnitOfWorkState.ACTIVE:
                await self.commit()
        finally:
            await self.close()

    # --- what handlers use -----------------------------------------------------------------

    def on_commit(self, callback: Callback) -> None:
        """Run ``callback`` after a successful commit (never on rollback)."""
        self._require_open("register an after-commit callback")
        self._after_commit.append(callback)

    def on_rollback(self, callback: Callback) -> None:
        """Run ``callback`` after a rollback (never after a commit)."""
        self._require_open("register a rollback callback")
        self._after_rollback.append(callback)

    def record_write(self) -> None:
        """Note that the unit has written (readers then bypass caches).

        Raises:
            UnitOfWorkError: the unit is not active, or was opened read-only.
        """
        self._require(UnitOfWorkState.ACTIVE, "write")
        if self.read_only:
            raise UnitOfWorkError("Unit of work is read-only.")
        self.has_written = True

    @property
    def is_active(self) -> bool:
        """Whether the unit has begun and not yet committed, rolled back or closed."""
        return self.state is UnitOfWorkState.ACTIVE

    # --- internals -------------------------------------------------------------------------

    def _require(self, state: UnitOfWorkState, action: str) -> None:
        if self.state is not state:
            raise UnitOfWorkError(f"Cannot {action}: unit of work is {self.state.value}.")

    def _require_open(self, action: str) -> None:
        if self.state not in (UnitOfWorkState.NEW, UnitOfWorkState.ACTIVE):
            raise UnitOfWorkError(f"Cannot {action}: unit of work is {self.state.value}.")

    async def _run_callbacks(self, callbacks: list[Callback], kind: str) -> None:
        pending, callbacks[:] = list(callbacks), []
        for callback in pending:
            try:
                outcome = callback()
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("%s callback %r failed; continuing.", kind, callback)


def advance_version(entity: Any, version: int, uow: UnitOfWork, *, durable: bool = False) -> None:
    """Move ``entity.version`` to ``version`` after a successful write in ``uow``.

    The version goes back if the unit rolls back, and the aggregate's pending events (if it
    has any) are forgotten once the unit commits. ``durable=True`` says the write is already
    permanent (no transaction): pending events are forgotten at once and nothing is undone.
    """
    previous = entity.version
    entity.version = version
    pending = list(getattr(entity, "pending_events", ()))
    if durable:
        if pending:
            entity.clear_pending_events(pending)
        return

    def restore() -> None:
        entity.version = previous

    def forget_persisted() -> None:
        entity.clear_pending_events(pending)

    uow.on_rollback(restore)
    if pending:
        uow.on_commit(forget_persisted)


UnitOfWorkFactory = Callable[[], UnitOfWork]
"""What the dispatcher's ``uow_factories`` map to: a callable returning a fresh unit."""
