"""SpecificationBuilder: a fluent, immutable way to assemble specifications."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications.ast import And, Condition, Not, Or, Specification
from cqrs_mongo.specifications.operators import Operator

Group = Specification | Callable[["SpecificationBuilder"], "SpecificationBuilder"]
"""A group argument: a specification, or a function that fills in a fresh builder."""


class SpecificationBuilder:
    """Builds a specification whose terms are AND-ed together.

    Every method returns a new builder, so a partly built one can be shared and extended.

    Example:
        >>> spec = (
        ...     SpecificationBuilder()
        ...     .where("status", "=", "submitted")
        ...     .where("total", ">=", 100)
        ...     .any_of(
        ...         lambda b: b.where("country", "=", "FR"),
        ...         lambda b: b.where("vip", "=", True),
        ...     )
        ...     .not_(lambda b: b.where("tags", "=", "test"))
        ...     .build()
        ... )
    """

    __slots__ = ("_terms",)

    def __init__(self, terms: tuple[Specification, ...] = ()) -> None:
        self._terms = terms

    def where(
        self, field: str, operator: Operator | str, value: Any = None
    ) -> SpecificationBuilder:
        """AND the condition ``field operator value``.

        ``elem_match`` also takes a builder or a function filling one in as its value.

        Raises:
            InvalidSpecificationError: bad field name, unknown operator or ill-shaped value.
        """
        op = Operator.parse(operator)
        if op is Operator.ELEM_MATCH and not isinstance(value, Specification):
            value = _resolve(value)
        return SpecificationBuilder((*self._terms, Condition(field, op, value)))

    def add(self, specification: Specification) -> SpecificationBuilder:
        """AND an already built specification.

        Raises:
            InvalidSpecificationError: ``specification`` is not a Specification.
        """
        if not isinstance(specification, Specification):
            raise InvalidSpecificationError(
                f"Expected a specification, got {type(specification).__name__}."
            )
        return SpecificationBuilder((*self._terms, specification))

    def any_of(self, *groups: Group) -> SpecificationBuilder:
        """AND one OR-group: at least one of ``groups`` must match.

        Raises:
            InvalidSpecificationError: no group given, or a group is not a specification.
        """
        return self.add(Or(tuple(_resolve(group) for group in groups)))

    def all_of(self, *groups: Group) -> SpecificationBuilder:
        """AND every one of ``groups`` (useful with functions that build groups).

        Raises:
            InvalidSpecificationError: a group is not a specification.
        """
        return self.add(And(tuple(_resolve(group) for group in groups)))

    def or_(self, group: Group) -> SpecificationBuilder:
        """Replace everything built so far by ``(built so far) OR group``.

        Raises:
            InvalidSpecificationError: ``group`` is not a specification.
        """
        return SpecificationBuilder((self.build() | _resolve(group),))

    def not_(self, group: Group) -> SpecificationBuilder:
        """AND the negation of ``group``.

        Raises:
            InvalidSpecificationError: ``group`` is not a specification.
        """
        return self.add(Not(_resolve(group)))

    def build(self) -> Specification:
        """The specification: the single term, the AND of all terms, or match-all if none."""
        if len(self._terms) == 1:
            return self._terms[0]
        return And(self._terms)


def _resolve(group: Any) -> Specification:
    if isinstance(group, Specification):
        return group
    if isinstance(group, SpecificationBuilder):
        return group.build()
    if callable(group):
        built = group(SpecificationBuilder())
        if isinstance(built, SpecificationBuilder):
            return built.build()
        if isinstance(built, Specification):
            return built
        raise InvalidSpecificationError(
            f"A group function must return a builder or specification, got {type(built).__name__}."
        )
    raise InvalidSpecificationError(
        f"Expected a specification, builder or function, got {type(group).__name__}."
    )
