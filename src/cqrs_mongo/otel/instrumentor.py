"""CqrsMongoInstrumentor: switches cqrs-mongo's OpenTelemetry spans and metrics on and off."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Self

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from cqrs_mongo.errors import ConfigurationError
from cqrs_mongo.mongo.monitoring import COMMAND_FORWARDER
from cqrs_mongo.otel.commands import CommandSpans
from cqrs_mongo.otel.metrics import OperationMetrics
from cqrs_mongo.otel.operations import OperationSpans
from cqrs_mongo.persistence.hooks import add_observer, remove_observer

logger = logging.getLogger("cqrs_mongo.otel")

SCOPE = "cqrs_mongo"


def _package_version() -> str:
    try:
        return version("cqrs-mongo")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


@dataclass(slots=True)
class _Active:
    operations: OperationSpans
    commands: CommandSpans
    metrics: OperationMetrics
    watchers: dict[str, asyncio.Task[None]]


class CqrsMongoInstrumentor:
    """Traces and measures dispatchers, units of work, MongoDB commands and projection workers.

    One instance per process (constructing it again returns the same one), as OpenTelemetry
    instrumentors are. It covers every client made by :func:`cqrs_mongo.mongo.create_client`
    and every dispatcher, unit of work, cache and worker, whether made before or after
    :meth:`instrument`. Clients made another way are not traced at the command level.

    Example:
        >>> from cqrs_mongo.otel import CqrsMongoInstrumentor
        >>> instrumentor = CqrsMongoInstrumentor()
        >>> instrumentor.instrument()   # the global providers
        >>> instrumentor.uninstrument()
    """

    _instance: ClassVar[CqrsMongoInstrumentor | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _active: _Active | None

    def __new__(cls) -> Self:
        with cls._lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._active = None
                cls._instance = instance
            return cls._instance  # type: ignore[return-value]

    @property
    def is_instrumented(self) -> bool:
        """Whether :meth:`instrument` is in force."""
        return self._active is not None

    def instrument(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_query_text: bool = False,
    ) -> None:
        """Start emitting spans and metrics.

        Instrumenting twice logs a warning and keeps the first instrumentation.

        Args:
            tracer_provider: where spans go; the global provider by default.
            meter_provider: where metrics go; the global provider by default.
            capture_query_text: put each command, as extended JSON, in ``db.query.text``
                (off by default: commands hold user data).
        """
        if self._active is not None:
            logger.warning("cqrs-mongo is already instrumented; instrument() ignored.")
            return
        tracer = trace.get_tracer(SCOPE, _package_version(), tracer_provider)
        meter = metrics.get_meter(SCOPE, _package_version(), meter_provider)
        instruments = OperationMetrics(meter)
        active = _Active(
            OperationSpans(tracer, instruments),
            CommandSpans(tracer, meter, capture_query_text=capture_query_text),
            instruments,
            {},
        )
        add_observer(active.operations)
        COMMAND_FORWARDER.subscribe(active.commands)
        self._active = active

    def uninstrument(self) -> None:
        """Stop emitting anything; spans still open are ended. Does nothing if not instrumented."""
        active, self._active = self._active, None
        if active is None:
            return
        remove_observer(active.operations)
        COMMAND_FORWARDER.unsubscribe(active.commands)
        active.commands.abandon()
        for task in active.watchers.values():
            task.cancel()

    async def record_projection_status(self, worker: Any) -> Any:
        """Ask ``worker.status()`` once and report it through the projection gauges.

        Returns:
            The status.

        Raises:
            ConfigurationError: not instrumented (there is nowhere to report to).
        """
        active = self._require_active()
        status = await worker.status()
        active.metrics.projections.record(status)
        return status

    def watch_projection(self, worker: Any, interval: float = 15.0) -> asyncio.Task[None]:
        """Record ``worker.status()`` every ``interval`` seconds until :meth:`uninstrument`.

        Must be called in a running event loop. Watching a projection again replaces the
        previous watch. A status that cannot be read is logged and tried again next time.

        Raises:
            ConfigurationError: not instrumented.
        """
        active = self._require_active()
        name = str(worker.name)
        previous = active.watchers.pop(name, None)
        if previous is not None:
            previous.cancel()
        task = asyncio.get_running_loop().create_task(
            self._watch(worker, interval), name=f"cqrs_mongo.otel.watch:{name}"
        )
        active.watchers[name] = task
        return task

    async def _watch(self, worker: Any, interval: float) -> None:
        while self._active is not None:
            try:
                await self.record_projection_status(worker)
            except Exception as exc:  # a database blip must not end the watch
                logger.warning("Projection %r: status not recorded: %r", worker.name, exc)
            await asyncio.sleep(interval)

    def _require_active(self) -> _Active:
        if self._active is None:
            raise ConfigurationError(
                "cqrs-mongo is not instrumented: call CqrsMongoInstrumentor().instrument() first."
            )
        return self._active
