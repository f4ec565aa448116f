"""SingleFlight: concurrent misses of one key in one process share a single database read."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


class Flight(enum.Enum):
    """What a follower gets when the leader's load failed or was cancelled."""

    FAILED = "failed"


class SingleFlight(Generic[V]):
    """Leaders load keys; followers that ask for a key already in flight wait for its value.

    The caller that first claims a key is its leader and must :meth:`land` it (in a
    ``finally``), with a value or without one. A follower whose leader landed without a value
    gets :data:`Flight.FAILED` and loads the key itself, so a failing or cancelled leader never
    fails its followers. Values are shared between callers, so they should be immutable (the
    caching dispatcher shares encoded bytes and lets each caller decode its own copy).

    Example:
        >>> import asyncio
        >>> async def demo() -> tuple[list[str], list[str]]:
        ...     flights: SingleFlight[bytes] = SingleFlight()
        ...     mine, _ = flights.claim(["a"])
        ...     again, theirs = flights.claim(["a"])
        ...     flights.land(mine, {"a": b"1"})
        ...     return again, list((await flights.wait(theirs)).values())
        >>> asyncio.run(demo())
        ([], [b'1'])
    """

    def __init__(self) -> None:
        self._flights: dict[str, asyncio.Future[V | Flight]] = {}

    def __len__(self) -> int:
        return len(self._flights)

    def claim(self, keys: Iterable[str]) -> tuple[list[str], dict[str, asyncio.Future[V | Flight]]]:
        """Split ``keys`` into those this caller now leads and those already in flight."""
        loop = asyncio.get_running_loop()
        mine: list[str] = []
        theirs: dict[str, asyncio.Future[V | Flight]] = {}
        for key in keys:
            flight = self._flights.get(key)
            if flight is None:
                self._flights[key] = loop.create_future()
                mine.append(key)
            else:
                theirs[key] = flight
        return mine, theirs

    def land(self, keys: Iterable[str], values: Mapping[str, V]) -> None:
        """End the flights of ``keys``, handing followers ``values[key]`` or ``FAILED``."""
        for key in keys:
            flight = self._flights.pop(key, None)
            if flight is not None and not flight.done():
                flight.set_result(values.get(key, Flight.FAILED))

    async def wait(self, flights: Mapping[str, asyncio.Future[V | Flight]]) -> dict[str, V]:
        """The values of other callers' flights; keys whose leader failed are left out."""
        landed: dict[str, V] = {}
        for key, flight in flights.items():
            # shield: a cancelled follower must not cancel the flight its peers are waiting on.
            value = await asyncio.shield(flight)
            if not isinstance(value, Flight):
                landed[key] = value
        return landed
