"""Time limits on many short awaits, kept by one event-loop timer instead of one per await.

``asyncio.timeout`` arms a loop timer on entry and cancels it on exit, and the event loop keeps
a cancelled timer in its heap until it falls due. Under a 5 s limit and thousands of
one-document writes a second, that heap holds thousands of dead timers, pushed and popped by
Python-level comparisons: about 34,000 instructions per write (callgrind), a third of what
the unit of work added to a lone write. A :class:`DeadlineWatch` keeps one timer per loop,
armed only while something is watched, for the earliest limit it watches.

A limit that expires cancels the watched task, exactly as ``asyncio.timeout`` does, and
:meth:`DeadlineWatch.finish` says so, so the caller raises its own timeout error in place of
the ``CancelledError``; a cancellation asked for by anyone else still propagates. A watch
started with ``busy`` holds the cancellation back while ``busy(task)`` says the task is in a
step that must not be cut (the driver opening a connection: a cancelled connect leaks its
socket), looking again every :data:`POSTPONE_SECONDS`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["DeadlineWatch", "Watched", "deadline_watch"]


Busy = Callable[[asyncio.Task[Any]], bool]
"""Whether a task is, right now, somewhere a cancellation must not reach (see ``start``)."""

POSTPONE_SECONDS = 0.05
"""How soon a limit that expired while its task was busy is looked at again."""


class Watched:
    """One await under a limit: its task, when the limit expires, and whether it did."""

    __slots__ = ("busy", "cancelling", "due", "expired", "task")

    def __init__(self, task: asyncio.Task[Any], due: float, busy: Busy | None) -> None:
        self.task = task
        self.due = due
        self.busy = busy
        # Cancellations already asked of the task: ours is told apart from later ones.
        self.cancelling = task.cancelling()
        self.expired = False


class DeadlineWatch:
    """Cancels the task of any watched await that outlives its limit (one per event loop).

    The timer fires at the earliest limit among the awaits still watched, cancels those
    that are due, and is armed again for the next one; with nothing watched it stays off.

    Example:
        >>> async def write_within(seconds: float) -> None:  # doctest: +SKIP
        ...     watch = deadline_watch()
        ...     watched = watch.start(seconds)
        ...     try:
        ...         await send_the_write()
        ...     except asyncio.CancelledError:
        ...         if watch.finish(watched):
        ...             raise TimeoutError from None
        ...         raise
        ...     watch.finish(watched)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._watched: set[Watched] = set()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, seconds: float, busy: Busy | None = None) -> Watched:
        """Watch the current task's await for ``seconds`` from now.

        ``busy(task)``, when given, is asked once the limit has expired: while it says yes
        the cancellation waits (looked at again every :data:`POSTPONE_SECONDS`), for awaits
        that must not be cut in the middle of some step (bounded by a limit of its own).

        Raises:
            RuntimeError: not called from a task of this watch's loop.
        """
        task = asyncio.current_task(self.loop)
        if task is None:
            raise RuntimeError("A deadline can only be watched from inside a task.")
        watched = Watched(task, self.loop.time() + seconds, busy)
        self._watched.add(watched)
        timer = self._timer
        if timer is None or watched.due < timer.when():
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(watched.due, self._expire)
        return watched

    def finish(self, watched: Watched) -> bool:
        """Stop watching; whether the limit expired and cancelled the task for it alone.

        Call it once, when the await ends however it ends. ``True`` means the await's
        ``CancelledError`` (or whatever the cancellation became) came from the limit: the
        task's cancellation is taken back, as ``asyncio.timeout`` does on exit, and the caller
        raises a timeout error instead. ``False`` with an expired limit means someone else
        also cancelled the task: that cancellation must propagate.
        """
        self._watched.discard(watched)
        if not watched.expired:
            return False
        return watched.task.uncancel() <= watched.cancelling

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time()
        earliest: float | None = None
        for watched in self._watched:
            if watched.expired:
                continue
            if watched.due <= now and watched.busy is not None and watched.busy(watched.task):
                watched.due = now + POSTPONE_SECONDS
            if watched.due <= now:
                watched.expired = True
                watched.task.cancel()
            elif earliest is None or watched.due < earliest:
                earliest = watched.due
        if earliest is not None:
            self._timer = self.loop.call_at(earliest, self._expire)


# Keyed by the loop's id, checked by identity: a new loop that reuses an id gets a new watch.
_watches: dict[int, DeadlineWatch] = {}


def deadline_watch() -> DeadlineWatch:
    """The running loop's :class:`DeadlineWatch`.

    Raises:
        RuntimeError: no event loop is running.
    """
    loop = asyncio.get_running_loop()
    watch = _watches.get(id(loop))
    if watch is None or watch.loop is not loop:
        for key, old in list(_watches.items()):  # forget the watches of closed loops
            if old.loop.is_closed():
                del _watches[key]
        watch = _watches[id(loop)] = DeadlineWatch(loop)
    return watch
