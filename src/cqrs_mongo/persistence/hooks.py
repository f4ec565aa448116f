"""Hooks: instrumentation around every dispatcher operation and unit-of-work transition.

A hook is a callable taking one :class:`HookEvent`. It is called three times per operation at
most: ``before``, then ``after`` or ``error``. Hooks may be plain functions or coroutines; a
hook that raises is logged and never breaks the operation it observes.

Besides the hooks each dispatcher or unit of work is given, process-wide *observers*
(:class:`Observer`, e.g. the OpenTelemetry instrumentor) watch every operation of every
dispatcher, unit of work, cache and projection worker, made before or after they were added.
With no hook and no observer, an operation's span is a plain object that does nothing.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    ExitStack,
    asynccontextmanager,
)
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol

Phase = Literal["before", "after", "error"]

logger = logging.getLogger("cqrs_mongo.hooks")


@dataclass(frozen=True, slots=True)
class HookEvent:
    """What a hook is told about one phase of one operation.

    Attributes:
        phase: ``before``, ``after`` or ``error``.
        operation: e.g. ``apply``, ``fetch_domain``, ``fetch``, ``uow.commit``, ``cache.get``.
        target: the entity, result or unit-of-work type the operation is about.
        ids: the ids involved, where known.
        source: the persistence source, where known.
        duration: seconds since ``before`` (``after`` and ``error`` only).
        error: the exception (``error`` only).
        detail: operation-specific extras (e.g. ``{"hits": 3}`` for a cache read).
    """

    phase: Phase
    operation: str
    target: type[Any] | None = None
    ids: Sequence[Any] = ()
    source: str | None = None
    duration: float | None = None
    error: BaseException | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Hook = Callable[[HookEvent], Awaitable[None] | None]


class Observer(Protocol):
    """A process-wide watcher of every operation (see :func:`add_observer`).

    Unlike a hook, an observer wraps the operation in a synchronous context manager entered in
    the caller's task, so it can make a tracing span current for everything the operation does
    (its unit of work, its database commands). It must be cheap and must not raise.
    """

    def span(
        self,
        operation: str,
        target: type[Any] | None,
        ids: Sequence[Any],
        source: str | None,
        detail: dict[str, Any],
    ) -> AbstractContextManager[object]:
        """A context manager around one operation; ``detail`` may grow until it exits."""
        ...

    def notify(self, event: HookEvent) -> None:
        """Something happened that has no duration (a retry, a cache outage)."""
        ...

    def trace_context(self) -> str | None:
        """The W3C ``traceparent`` of the current span, or ``None`` when there is none."""
        ...


# A list read on every operation: ``not _observers`` is the whole cost while nothing observes.
_observers: list[Observer] = []


def add_observer(observer: Observer) -> None:
    """Make ``observer`` watch every operation in the process until :func:`remove_observer`."""
    if observer not in _observers:
        _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    """Stop ``observer`` watching; removing one that was never added does nothing."""
    if observer in _observers:
        _observers.remove(observer)


def observed() -> bool:
    """Whether any process-wide observer is registered."""
    return bool(_observers)


def notify_observers(event: HookEvent) -> None:
    """Tell every observer about ``event``; a failing observer is logged and skipped."""
    for observer in tuple(_observers):
        try:
            observer.notify(event)
        except Exception:
            logger.exception("Observer %r failed on %s.", observer, event.operation)


def current_trace_context() -> str | None:
    """The W3C ``traceparent`` of the current span per the first observer that knows one."""
    for observer in tuple(_observers):
        try:
            found = observer.trace_context()
        except Exception:
            logger.exception("Observer %r failed to give the trace context.", observer)
            continue
        if found:
            return found
    return None


class Observation:
    """The observers' spans around a long-lived operation (a unit of work), ended by hand.

    Entered when made; :meth:`finish` ends it, with the exception the operation ended with.
    Both must happen in the same task, as for any context-local state.
    """

    __slots__ = ("_stack", "detail")

    def __init__(
        self,
        operation: str,
        target: type[Any] | None,
        source: str | None,
        detail: dict[str, Any],
    ) -> None:
        self.detail = detail
        self._stack = _enter_observers(operation, target, (), source, detail)

    def finish(self, error: BaseException | None = None) -> None:
        """End the observers' spans, telling them about ``error`` if the operation failed."""
        stack, self._stack = self._stack, ExitStack()
        _exit_observers(stack, error)


def observe(
    operation: str,
    target: type[Any] | None = None,
    source: str | None = None,
    detail: dict[str, Any] | None = None,
) -> Observation | None:
    """An :class:`Observation` of ``operation``, or ``None`` (at no cost) while none observes."""
    if not _observers:
        return None
    return Observation(operation, target, source, detail if detail is not None else {})


def _enter_observers(
    operation: str,
    target: type[Any] | None,
    ids: Sequence[Any],
    source: str | None,
    detail: dict[str, Any],
) -> ExitStack:
    stack = ExitStack()
    for observer in tuple(_observers):
        try:
            stack.enter_context(observer.span(operation, target, ids, source, detail))
        except Exception:
            logger.exception("Observer %r failed to open %s.", observer, operation)
    return stack


def _exit_observers(stack: ExitStack, error: BaseException | None) -> None:
    tb: TracebackType | None = error.__traceback__ if error is not None else None
    try:
        stack.__exit__(type(error) if error is not None else None, error, tb)
    except Exception:
        logger.exception("An observer failed to close its span.")


class Hooks:
    """An ordered set of hooks, with a context manager that times one operation.

    Example:
        >>> hooks = Hooks()
        >>> seen: list[HookEvent] = []
        >>> _ = hooks.register(seen.append)
        >>> async def work() -> None:
        ...     async with hooks.span("apply"):
        ...         pass
    """

    def __init__(self, hooks: Sequence[Hook] = ()) -> None:
        self._hooks: list[Hook] = list(hooks)

    def register(self, hook: Hook) -> Hook:
        """Add ``hook``; returns it, so this works as a decorator."""
        self._hooks.append(hook)
        return hook

    def unregister(self, hook: Hook) -> None:
        """Remove ``hook`` if present."""
        if hook in self._hooks:
            self._hooks.remove(hook)

    def __bool__(self) -> bool:
        return bool(self._hooks)

    @property
    def watched(self) -> bool:
        """Whether a hook or a process-wide observer would see a :meth:`span` (else it is a
        no-op, and a hot path may skip it)."""
        return bool(self._hooks) or bool(_observers)

    async def emit(self, event: HookEvent) -> None:
        """Notify the process-wide observers, then call every hook with ``event``.

        A failing hook or observer is logged and skipped.
        """
        if _observers:
            notify_observers(event)
        await self._emit_hooks(event)

    def span(
        self,
        operation: str,
        target: type[Any] | None = None,
        ids: Sequence[Any] = (),
        source: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AbstractAsyncContextManager[dict[str, Any]]:
        """Emit ``before``, run the block, then ``after`` or ``error`` with its duration.

        The context value is the event's ``detail``; the block may add to it. Process-wide
        observers wrap the block too. With no hook and no observer (the common case, on every
        operation) this is a plain object whose enter and exit do nothing, so instrumentation
        costs nothing until it is used.
        """
        extra = detail if detail is not None else {}
        if not self._hooks and not _observers:
            return _Unobserved(extra)
        return self._observed(operation, target, ids, source, extra)

    @asynccontextmanager
    async def _observed(
        self,
        operation: str,
        target: type[Any] | None,
        ids: Sequence[Any],
        source: str | None,
        extra: dict[str, Any],
    ) -> AsyncIterator[dict[str, Any]]:
        # Observers' spans are entered here, in the caller's task, so they are current for
        # the whole block: its unit of work and its commands nest under them.
        observers = _enter_observers(operation, target, ids, source, extra)
        await self._emit_hooks(HookEvent("before", operation, target, ids, source, detail=extra))
        started = time.perf_counter()
        try:
            yield extra
        except BaseException as exc:
            elapsed = time.perf_counter() - started
            event = HookEvent("error", operation, target, ids, source, elapsed, exc, extra)
            await self._emit_hooks(event)
            _exit_observers(observers, exc)
            raise
        elapsed = time.perf_counter() - started
        await self._emit_hooks(
            HookEvent("after", operation, target, ids, source, elapsed, None, extra)
        )
        _exit_observers(observers, None)

    async def _emit_hooks(self, event: HookEvent) -> None:
        # The observers see this operation through their span, not as events.
        for hook in self._hooks:
            try:
                outcome = hook(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("Hook %r failed on %s %s.", hook, event.phase, event.operation)


class _Unobserved(AbstractAsyncContextManager[dict[str, Any]]):
    """The span of an operation no hook watches."""

    __slots__ = ("_detail",)

    def __init__(self, detail: dict[str, Any]) -> None:
        self._detail = detail

    async def __aenter__(self) -> dict[str, Any]:
        return self._detail

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class LoggingHook:
    """A ready-made hook that logs each operation's outcome and duration.

    ``before`` is logged at DEBUG, ``after`` at ``level`` and ``error`` at WARNING.
    """

    def __init__(self, logger_name: str = "cqrs_mongo", level: int = logging.INFO) -> None:
        self._logger = logging.getLogger(logger_name)
        self._level = level

    def __call__(self, event: HookEvent) -> None:
        name = event.target.__qualname__ if event.target is not None else "-"
        ids = f" ids={list(event.ids)!r}" if event.ids else ""
        if event.phase == "before":
            self._logger.debug("%s %s%s started", event.operation, name, ids)
        elif event.phase == "after":
            self._logger.log(
                self._level,
                "%s %s%s took %.2f ms",
                event.operation,
                name,
                ids,
                (event.duration or 0.0) * 1000,
            )
        else:
            self._logger.warning(
                "%s %s%s failed after %.2f ms: %r",
                event.operation,
                name,
                ids,
                (event.duration or 0.0) * 1000,
                event.error,
            )
