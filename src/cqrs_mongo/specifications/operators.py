"""The comparison operators a specification condition may use, with their readable aliases."""

from __future__ import annotations

from enum import StrEnum

from cqrs_mongo.errors import InvalidSpecificationError


class Operator(StrEnum):
    """A condition's operator; the value is the canonical spelling used in ``to_dict``."""

    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    IN = "in"
    NOT_IN = "not_in"
    BETWEEN = "between"
    NOT_BETWEEN = "not_between"
    CONTAINS = "contains"
    ICONTAINS = "icontains"
    STARTSWITH = "startswith"
    ISTARTSWITH = "istartswith"
    ENDSWITH = "endswith"
    IENDSWITH = "iendswith"
    LIKE = "like"
    ILIKE = "ilike"
    IS_NULL = "is_null"
    IS_NOT_NULL = "is_not_null"
    EXISTS = "exists"
    ALL = "all"
    SIZE = "size"
    ELEM_MATCH = "elem_match"

    @classmethod
    def parse(cls, text: str | Operator) -> Operator:
        """The operator spelled ``text``: a canonical symbol or a readable alias.

        Args:
            text: ``"="``, ``"eq"``, ``">="``, ``"gte"``, ``"not_in"``, ``"nin"``, ...

        Raises:
            InvalidSpecificationError: ``text`` names no operator.
        """
        if isinstance(text, Operator):
            return text
        if type(text) is str:
            # Most code spells operators canonically ("=", ">="): one lookup, no copy.
            exact = _BY_SPELLING.get(text)
            if exact is not None:
                return exact
        if isinstance(text, str):
            found = _BY_SPELLING.get(text.strip().lower())
            if found is not None:
                return found
        raise InvalidSpecificationError(
            f"Unknown operator {text!r}: expected one of {', '.join(o.value for o in cls)}."
        )


_ALIASES: dict[str, Operator] = {
    "==": Operator.EQ,
    "eq": Operator.EQ,
    "<>": Operator.NE,
    "ne": Operator.NE,
    "neq": Operator.NE,
    "gt": Operator.GT,
    "ge": Operator.GE,
    "gte": Operator.GE,
    "lt": Operator.LT,
    "le": Operator.LE,
    "lte": Operator.LE,
    "nin": Operator.NOT_IN,
    "not in": Operator.NOT_IN,
    "not between": Operator.NOT_BETWEEN,
    "is null": Operator.IS_NULL,
    "is not null": Operator.IS_NOT_NULL,
    "elemmatch": Operator.ELEM_MATCH,
}

_BY_SPELLING: dict[str, Operator] = {**{o.value: o for o in Operator}, **_ALIASES}

COMPARISONS = frozenset({Operator.GT, Operator.GE, Operator.LT, Operator.LE})
TEXT_MATCHES = frozenset(
    {
        Operator.CONTAINS,
        Operator.ICONTAINS,
        Operator.STARTSWITH,
        Operator.ISTARTSWITH,
        Operator.ENDSWITH,
        Operator.IENDSWITH,
        Operator.LIKE,
        Operator.ILIKE,
    }
)
CASE_INSENSITIVE = frozenset(
    {Operator.ICONTAINS, Operator.ISTARTSWITH, Operator.IENDSWITH, Operator.ILIKE}
)
