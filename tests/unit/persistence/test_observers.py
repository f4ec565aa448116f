"""Process-wide observers: they wrap every operation, are free while absent, and never break one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from cqrs_mongo.persistence.hooks import (
    HookEvent,
    Hooks,
    _Unobserved,
    add_observer,
    current_trace_context,
    observe,
    observed,
    remove_observer,
)
from cqrs_mongo.persistence.in_memory import InMemoryStore, InMemoryUnitOfWork


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.log: list[tuple[str, str, Any]] = []
        self.fail = fail

    def span(
        self,
        operation: str,
        target: type[Any] | None,
        ids: Sequence[Any],
        source: str | None,
        detail: dict[str, Any],
    ) -> AbstractContextManager[object]:
        if self.fail:
            raise RuntimeError("observer broke")
        return self._scope(operation, detail)

    @contextmanager
    def _scope(self, operation: str, detail: dict[str, Any]) -> Iterator[None]:
        self.log.append(("enter", operation, None))
        try:
            yield
        except BaseException as exc:
            self.log.append(("error", operation, type(exc).__name__))
            raise
        self.log.append(("exit", operation, dict(detail)))

    def notify(self, event: HookEvent) -> None:
        self.log.append(("notify", event.operation, event.phase))

    def trace_context(self) -> str | None:
        return "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    found = Recorder()
    add_observer(found)
    try:
        yield found
    finally:
        remove_observer(found)


def test_with_no_hook_and_no_observer_a_span_is_the_free_object() -> None:
    assert not observed()
    assert isinstance(Hooks().span("apply"), _Unobserved)
    assert observe("uow") is None
    assert current_trace_context() is None


async def test_an_observer_wraps_operations_of_hooks_made_before_it(recorder: Recorder) -> None:
    hooks = Hooks()
    async with hooks.span("apply", detail={"mode": "x"}) as detail:
        detail["extra"] = 1
    assert recorder.log == [("enter", "apply", None), ("exit", "apply", {"mode": "x", "extra": 1})]
    assert current_trace_context() == "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


async def test_an_observer_sees_the_error_an_operation_ended_with(recorder: Recorder) -> None:
    with pytest.raises(KeyError):
        async with Hooks().span("fetch"):
            raise KeyError("x")
    assert recorder.log[-1] == ("error", "fetch", "KeyError")


async def test_a_unit_of_work_is_one_observation_from_begin_to_close(recorder: Recorder) -> None:
    async with InMemoryUnitOfWork(InMemoryStore(), source="s"):
        pass
    operations = [(kind, op) for kind, op, _ in recorder.log]
    assert operations[0] == ("enter", "uow")
    assert operations[-1] == ("exit", "uow")
    assert recorder.log[-1][2]["outcome"] == "committed"


async def test_a_rolled_back_unit_reports_the_error_and_outcome(recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="no"):
        async with InMemoryUnitOfWork(InMemoryStore()):
            raise ValueError("no")
    assert recorder.log[-1] == ("error", "uow", "ValueError")


async def test_a_failing_observer_never_breaks_the_operation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Recorder(fail=True)
    add_observer(broken)
    try:
        async with Hooks().span("apply"):
            ran = True
    finally:
        remove_observer(broken)
    assert ran
    assert "failed to open apply" in caplog.text


async def test_emitted_events_reach_observers(recorder: Recorder) -> None:
    await Hooks().emit(HookEvent("error", "cache.outage"))
    assert recorder.log == [("notify", "cache.outage", "error")]
