"""Upcasters: lift stored payloads of old schema versions to today's shape, on read only."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from cqrs_mongo.errors import ConfigurationError

Payload = dict[str, Any]
UpcastFunction = Callable[[Payload], Payload]


@dataclass(frozen=True, slots=True)
class Upcaster:
    """One step: turns a payload of ``event_type`` at ``from_version`` into ``from_version + 1``."""

    event_type: str
    from_version: int
    function: UpcastFunction


class UpcasterChain:
    """Upcasters by (event type, schema version), applied one step at a time on read.

    Stored documents are never rewritten: each read lifts a copy of the payload from the
    version it was written with to the version the event class has today (v1 -> v2 -> v3).

    Example:
        >>> chain = UpcasterChain()
        >>> @chain.register("OrderCreated", from_version=1)
        ... def add_currency(payload: dict) -> dict:
        ...     return {**payload, "currency": "EUR"}
        >>> chain.upcast("OrderCreated", 1, 2, {"total": "1"})
        {'total': '1', 'currency': 'EUR'}
    """

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    @overload
    def register(
        self, event_type: str, from_version: int
    ) -> Callable[[UpcastFunction], UpcastFunction]: ...

    @overload
    def register(
        self, event_type: str, from_version: int, function: UpcastFunction
    ) -> UpcastFunction: ...

    def register(
        self, event_type: str, from_version: int, function: UpcastFunction | None = None
    ) -> UpcastFunction | Callable[[UpcastFunction], UpcastFunction]:
        """Register the step from ``from_version`` to ``from_version + 1`` of ``event_type``.

        Usable as a decorator (omit ``function``) or called directly.

        Raises:
            ConfigurationError: a step for this type and version is already registered, or
                ``from_version`` is below 1.
        """
        if function is None:

            def decorator(fn: UpcastFunction) -> UpcastFunction:
                return self.register(event_type, from_version, fn)

            return decorator
        if from_version < 1:
            raise ConfigurationError(
                f"Upcaster for {event_type!r}: schema versions start at 1, got {from_version}."
            )
        key = (event_type, from_version)
        if key in self._steps:
            raise ConfigurationError(
                f"Upcaster for {event_type!r} from schema version {from_version} "
                "is already registered."
            )
        self._steps[key] = Upcaster(event_type, from_version, function)
        return function

    def has_step(self, event_type: str, from_version: int) -> bool:
        """Whether a step from ``from_version`` of ``event_type`` is registered."""
        return (event_type, from_version) in self._steps

    def upcast(
        self, event_type: str, from_version: int, to_version: int, payload: Payload
    ) -> Payload:
        """``payload`` lifted from ``from_version`` to ``to_version``; the input is not changed.

        Raises:
            ConfigurationError: a step of the chain is missing.
        """
        if from_version == to_version:
            return payload
        lifted = copy.deepcopy(payload)
        for version in range(from_version, to_version):
            step = self._steps.get((event_type, version))
            if step is None:
                raise ConfigurationError(
                    f"Event {event_type!r}: no upcaster from schema version {version} "
                    f"to {version + 1} (stored {from_version}, class expects {to_version})."
                )
            lifted = step.function(lifted)
        return lifted
