"""ExpectedVersion: what a writer believes a stream's version is when it appends."""

from __future__ import annotations

import enum
from typing import TypeAlias


class ExpectedVersion(enum.Enum):
    """The two expectations that are not a plain version number.

    ``NO_STREAM``: the stream must not exist yet (the same check as the int ``0``).
    ``ANY``: append after whatever is there; only a writer racing this very append conflicts.
    """

    NO_STREAM = "no_stream"
    ANY = "any"


Expected: TypeAlias = int | ExpectedVersion
"""An expected version: an exact version (``0`` for a new stream) or an :class:`ExpectedVersion`."""


def exact_version(expected: Expected) -> int | None:
    """The exact version ``expected`` demands, or ``None`` for :attr:`ExpectedVersion.ANY`.

    Raises:
        ValueError: ``expected`` is a negative int, a bool or not an expected version at all.
    """
    if expected is ExpectedVersion.ANY:
        return None
    if expected is ExpectedVersion.NO_STREAM:
        return 0
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise ValueError(
            f"Expected version must be an int >= 0 or an ExpectedVersion, got {expected!r}."
        )
    return expected


def describe(expected: Expected) -> int | None:
    """``expected`` as :class:`~cqrs_mongo.errors.ConcurrencyError` reports it.

    ``None`` means "no existing version" (a new stream); ``ANY`` has no number and is
    reported by the caller with the version it read.
    """
    return None if isinstance(expected, ExpectedVersion) else expected
