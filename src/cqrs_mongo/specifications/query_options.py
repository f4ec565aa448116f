"""QueryOptions: a specification plus ordering, offset or keyset pagination and field selection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications.ast import Specification
from cqrs_mongo.specifications.paths import validate_field_path

MAX_LIMIT = 100_000
"""Largest page size accepted."""

MAX_CURSOR_LENGTH = 16_384
"""Longest cursor token accepted, in characters."""

_UNCHANGED: Any = object()


class SortKey(NamedTuple):
    """One ordering key: a field path and a direction (``1`` ascending, ``-1`` descending).

    A tuple, so ``for field, direction in options.ordering`` reads like a pymongo sort.
    """

    field: str
    direction: int = 1

    @property
    def descending(self) -> bool:
        """Whether this key sorts from high to low."""
        return self.direction < 0

    @classmethod
    def parse(cls, text: str) -> SortKey:
        """``"name"`` / ``"+name"`` ascending, ``"-created_at"`` descending.

        Raises:
            InvalidSpecificationError: the field name is invalid.
        """
        if not isinstance(text, str):
            raise InvalidSpecificationError(
                f"Ordering field must be a string, got {type(text).__name__}."
            )
        direction = -1 if text.startswith("-") else 1
        name = text[1:] if text[:1] in ("+", "-") else text
        return cls(validate_field_path(name), direction)

    def __str__(self) -> str:
        return f"-{self.field}" if self.descending else self.field


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """How to run a specification query; immutable, each ``with_*`` returns a copy.

    Offset and cursor pagination are exclusive: a cursor already says where the page starts,
    so giving both raises instead of silently skipping rows twice.

    Example:
        >>> options = (
        ...     QueryOptions()
        ...     .with_specification(spec)
        ...     .with_ordering("-created_at", "name")
        ...     .with_pagination(limit=10)
        ... )
    """

    specification: Specification | None = None
    ordering: tuple[SortKey, ...] = ()
    limit: int | None = None
    offset: int = 0
    cursor: str | None = None
    fields: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        _check_specification(self.specification)
        _check_limit(self.limit)
        _check_offset(self.offset)
        _check_ordering(self.ordering)
        _check_cursor(self.cursor)
        _check_exclusive(self.offset, self.cursor)
        _check_fields(self.fields)

    @classmethod
    def coerce(cls, criteria: Specification | QueryOptions | None) -> QueryOptions:
        """``criteria`` as QueryOptions: options unchanged, a specification wrapped.

        Raises:
            InvalidSpecificationError: ``criteria`` is neither.
        """
        if isinstance(criteria, QueryOptions):
            return criteria
        if criteria is None or isinstance(criteria, Specification):
            return cls(specification=criteria)
        raise InvalidSpecificationError(
            f"Expected a Specification or QueryOptions, got {type(criteria).__name__}."
        )

    def with_specification(self, specification: Specification | None) -> QueryOptions:
        """A copy filtering by ``specification`` (``None``: everything).

        Raises:
            InvalidSpecificationError: not a specification.
        """
        _check_specification(specification)
        return self._derive(specification, self.ordering, self.limit, self.offset, self.cursor)

    def with_ordering(self, *fields: str | SortKey) -> QueryOptions:
        """A copy ordered by ``fields`` (``"-name"`` for descending), replacing any ordering.

        Raises:
            InvalidSpecificationError: a field name is invalid or repeated.
        """
        keys = tuple(f if isinstance(f, SortKey) else SortKey.parse(f) for f in fields)
        _check_ordering(keys)
        return self._derive(self.specification, keys, self.limit, self.offset, self.cursor)

    def with_pagination(self, limit: int | None = None, offset: int = 0) -> QueryOptions:
        """A copy returning at most ``limit`` rows after skipping ``offset``.

        Raises:
            InvalidSpecificationError: limit not in 1..MAX_LIMIT, negative offset, or an
                offset while a cursor is set.
        """
        _check_limit(limit)
        _check_offset(offset)
        _check_exclusive(offset, self.cursor)
        return self._derive(self.specification, self.ordering, limit, offset, self.cursor)

    def with_cursor(self, token: str | None) -> QueryOptions:
        """A copy starting after the row the opaque ``token`` was issued for.

        Raises:
            InvalidSpecificationError: the token is not a short string, or an offset is set.
        """
        _check_cursor(token)
        _check_exclusive(self.offset, token)
        return self._derive(self.specification, self.ordering, self.limit, self.offset, token)

    def with_fields(self, *fields: str) -> QueryOptions:
        """A copy returning only ``fields`` (and ``_id``); no fields means all of them.

        Raises:
            InvalidSpecificationError: a field name is invalid, or one lies inside another
                (``"a"`` and ``"a.b"``).
        """
        selected = tuple(fields) or None
        _check_fields(selected)
        return self._derive(
            self.specification, self.ordering, self.limit, self.offset, self.cursor, selected
        )

    def _derive(
        self,
        specification: Specification | None,
        ordering: tuple[SortKey, ...],
        limit: int | None,
        offset: int,
        cursor: str | None,
        fields: Any = _UNCHANGED,
    ) -> QueryOptions:
        """A copy with the given parts, which the caller has validated.

        ``self`` passed every check when it was built, so a ``with_*`` step only checks the
        part it changes (and how it combines with the rest) instead of all of them again.
        """
        selected = self.fields if fields is _UNCHANGED else fields
        if type(self) is not QueryOptions:
            # A subclass may carry fields or checks of its own: let its __init__ see them.
            return replace(
                self,
                specification=specification,
                ordering=ordering,
                limit=limit,
                offset=offset,
                cursor=cursor,
                fields=selected,
            )
        copy = object.__new__(QueryOptions)
        _set(copy, "specification", specification)
        _set(copy, "ordering", ordering)
        _set(copy, "limit", limit)
        _set(copy, "offset", offset)
        _set(copy, "cursor", cursor)
        _set(copy, "fields", selected)
        return copy


_set = object.__setattr__


def _check_specification(specification: Any) -> None:
    if specification is not None and not isinstance(specification, Specification):
        raise InvalidSpecificationError(
            f"Expected a specification, got {type(specification).__name__}."
        )


def _check_offset(offset: Any) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidSpecificationError(f"Offset must be a non-negative integer, got {offset!r}.")


def _check_exclusive(offset: int, cursor: str | None) -> None:
    if cursor is not None and offset:
        raise InvalidSpecificationError(
            f"Offset {offset} cannot be combined with a cursor; use one or the other."
        )


def _check_fields(fields: Iterable[Any] | None) -> None:
    if fields is None:
        return
    names = [validate_field_path(name) for name in fields]
    # The server refuses a projection naming a path and a path inside it ("Path
    # collision"), so such a selection could never run.
    for name in names:
        for other in names:
            if other.startswith(f"{name}."):
                raise InvalidSpecificationError(
                    f"Selected fields {name!r} and {other!r} overlap; select only {name!r}."
                )


def _check_limit(limit: Any) -> None:
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidSpecificationError(
            f"Limit must be an integer from 1 to {MAX_LIMIT} or None, got {limit!r}."
        )


def _check_ordering(ordering: Iterable[Any]) -> None:
    seen: set[str] = set()
    for key in ordering:
        if not isinstance(key, SortKey):
            raise InvalidSpecificationError(
                f"Ordering keys must be SortKey, got {type(key).__name__}."
            )
        validate_field_path(key.field)
        if key.direction not in (1, -1):
            raise InvalidSpecificationError(
                f"Ordering direction for {key.field!r} must be 1 or -1, got {key.direction!r}."
            )
        if key.field in seen:
            raise InvalidSpecificationError(f"Ordering names field {key.field!r} twice.")
        seen.add(key.field)


def _check_cursor(cursor: Any) -> None:
    if cursor is None:
        return
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidSpecificationError(
            f"Cursor must be a non-empty token of at most {MAX_CURSOR_LENGTH} characters."
        )
