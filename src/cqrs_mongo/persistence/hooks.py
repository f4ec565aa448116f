"""Hooks: instrumentation around every dispatcher operation and unit-of-work transition.

A hook is a callable taking one :class:`HookEvent`. It is called three times per operation at
most: ``before``, then ``after`` or ``error``. Hooks may be plain functions or coroutines; a
hook that raises is logged and never breaks the operation it observes.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

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

    async def emit(self, event: HookEvent) -> None:
        """Call every hook with ``event``; a failing hook is logged and skipped."""
        for hook in self._hooks:
            try:
                outcome = hook(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("Hook %r failed on %s %s.", hook, event.phase, event.operation)

    def span(
        self,
        operation: str,
        target: type[Any] | None = None,
        ids: Sequence[Any] = (),
        source: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AbstractAsyncContextManager[dict[str, Any]]:
        """Emit ``before``, run the block, then ``after`` or ``error`` with its duration.

        The context value is the event's ``detail``; the block may add to it. With no hook
        registered (the common case, on every operation) this is a plain object whose enter
        and exit do nothing, so instrumentation costs nothing until it is used.
        """
        extra = detail if detail is not None else {}
        if not self._hooks:
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
        await self.emit(HookEvent("before", operation, target, ids, source, detail=extra))
        started = time.perf_counter()
        try:
            yield extra
        except BaseException as exc:
            elapsed = time.perf_counter() - started
            await self.emit(HookEvent("error", operation, target, ids, source, elapsed, exc, extra))
            raise
        elapsed = time.perf_counter() - started
        await self.emit(HookEvent("after", operation, target, ids, source, elapsed, None, extra))


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
