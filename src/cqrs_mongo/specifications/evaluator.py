"""In-memory evaluation of one condition with MongoDB's query semantics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from cqrs_mongo.specifications.bson_order import TypeClass, bson_compare, bson_equal, type_class
from cqrs_mongo.specifications.document import as_value
from cqrs_mongo.specifications.operators import Operator
from cqrs_mongo.specifications.patterns import compiled, is_case_insensitive, text_pattern

MISSING: Final = object()
"""Stands for a field the path does not reach."""


def resolve(document: Mapping[str, Any], path: str) -> list[Any]:
    """Every value ``path`` reaches in ``document`` (MISSING where a field is absent).

    Path resolution follows the server's matcher: a dotted path walks into sub-documents; at an
    array it continues into every element that is a document (other elements contribute
    nothing); a missing field yields MISSING, which equality with ``None`` matches. At the end of
    the path an array is tested both as a whole and element by element (one level only).
    """
    current: list[Any] = [document]
    for segment in path.split("."):
        reached: list[Any] = []
        for value in current:
            if isinstance(value, Mapping):
                reached.append(as_value(value[segment]) if segment in value else MISSING)
            elif isinstance(value, list | tuple):
                reached.extend(
                    as_value(element[segment]) if segment in element else MISSING
                    for element in map(as_value, value)
                    if isinstance(element, Mapping)
                )
            else:
                reached.append(MISSING)
        current = reached
    return current


def _with_elements(values: list[Any]) -> list[Any]:
    expanded: list[Any] = []
    for value in values:
        expanded.append(value)
        if isinstance(value, list | tuple):
            expanded.extend(as_value(element) for element in value)
    return expanded


def equals(values: list[Any], expected: Any) -> bool:
    """``{field: {$eq: expected}}``: some reached value, or element of one, equals it."""
    if expected is None and MISSING in values:
        return True
    return any(
        value is not MISSING and bson_equal(value, expected) for value in _with_elements(values)
    )


_COMPARISONS: dict[Operator, Callable[[int], bool]] = {
    Operator.GT: lambda c: c > 0,
    Operator.GE: lambda c: c >= 0,
    Operator.LT: lambda c: c < 0,
    Operator.LE: lambda c: c <= 0,
}


def compares(values: list[Any], operator: Operator, bound: Any) -> bool:
    """``$gt``/``$gte``/``$lt``/``$lte``: some value of the bound's type class compares so."""
    if bound is None:
        # Only null and missing are in null's class; they are equal to it, never above/below.
        return operator in (Operator.GE, Operator.LE) and equals(values, None)
    test = _COMPARISONS[operator]
    kind = type_class(bound)
    for value in _with_elements(values):
        if value is MISSING or type_class(value) is not kind:
            continue
        order = bson_compare(value, bound)
        if order is not None and test(order):
            return True
    return False


def _text(values: list[Any], operator: Operator, text: str) -> bool:
    pattern = compiled(operator, text)
    for value in _with_elements(values):
        if isinstance(value, str):
            if pattern.search(value) is not None:
                return True
        elif type_class(value) is TypeClass.REGEX and _same_regex(value, operator, text):
            return True
    return False


# BSON regex options in the order the driver writes them, from the ``re`` flags it reads.
_OPTION_FLAGS = (("i", 2), ("l", 4), ("m", 8), ("s", 16), ("u", 32), ("x", 64))


def _same_regex(stored: Any, operator: Operator, text: str) -> bool:
    # The server does not run a $regex against a stored regular expression: it matches one
    # whose pattern and options equal the query's (the operator's i* variants send "i").
    flags = int(getattr(stored, "flags", 0))
    options = "".join(letter for letter, bit in _OPTION_FLAGS if flags & bit)
    wanted = "i" if is_case_insensitive(operator) else ""
    return bool(stored.pattern == text_pattern(operator, text) and options == wanted)


def _elem_match(values: list[Any], spec: Any) -> bool:
    for value in values:
        if not isinstance(value, list | tuple):
            continue
        for element in map(as_value, value):
            # The server tests every element that is a document; an array element is a
            # document keyed "0", "1", ... (field paths here are never numeric).
            if isinstance(element, list | tuple):
                element = {str(i): item for i, item in enumerate(element)}
            if isinstance(element, Mapping) and spec.matches(element):
                return True
    return False


def _between(values: list[Any], bounds: tuple[Any, Any]) -> bool:
    # Like {$gte: low, $lte: high}: each bound may be met by a different array element.
    low, high = bounds
    return compares(values, Operator.GE, low) and compares(values, Operator.LE, high)


def _all(values: list[Any], required: tuple[Any, ...]) -> bool:
    return bool(required) and all(equals(values, item) for item in required)


def _size(values: list[Any], size: int) -> bool:
    return any(isinstance(value, list | tuple) and len(value) == size for value in values)


def _exists(values: list[Any]) -> bool:
    return any(value is not MISSING for value in values)


_RULES: dict[Operator, Callable[[list[Any], Any], bool]] = {
    Operator.EQ: equals,
    Operator.NE: lambda v, x: not equals(v, x),
    Operator.IN: lambda v, xs: any(equals(v, x) for x in xs),
    Operator.NOT_IN: lambda v, xs: not any(equals(v, x) for x in xs),
    Operator.BETWEEN: _between,
    Operator.NOT_BETWEEN: lambda v, b: not _between(v, b),
    Operator.IS_NULL: lambda v, flag: equals(v, None) is flag,
    Operator.IS_NOT_NULL: lambda v, flag: equals(v, None) is not flag,
    Operator.EXISTS: lambda v, flag: _exists(v) is flag,
    Operator.ALL: _all,
    Operator.SIZE: _size,
    Operator.ELEM_MATCH: _elem_match,
}


def matches_condition(
    document: Mapping[str, Any], field: str, operator: Operator, value: Any
) -> bool:
    """Whether ``document`` satisfies ``field operator value`` as MongoDB would decide."""
    values = resolve(document, field)
    rule = _RULES.get(operator)
    if rule is not None:
        return rule(values, value)
    if operator in _COMPARISONS:
        return compares(values, operator, value)
    return _text(values, operator, value)


__all__ = ["MISSING", "TypeClass", "compares", "equals", "matches_condition", "resolve"]
