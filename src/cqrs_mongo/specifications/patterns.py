"""Regular expressions for the text operators, written once for the server and the evaluator."""

from __future__ import annotations

import re
from functools import lru_cache

from cqrs_mongo.specifications.operators import CASE_INSENSITIVE, Operator

END_OF_TEXT = r"(?![\s\S])"
ANY_CHAR = r"[\s\S]"


def text_pattern(operator: Operator, text: str) -> str:
    """The regular expression (without flags) the text ``operator`` applies for ``text``.

    Each pattern uses only syntax that PCRE (the server) and Python's ``re`` read identically:
    ``re.escape``d literals (a backslash before a non-alphanumeric character is a literal in
    both), ``^``, ``[\\s\\S]`` for "any character including newline", and ``(?![\\s\\S])`` for
    "end of text" (``$`` would also match before a final newline in both engines).
    """
    base = _BASE.get(operator, operator)
    if base is Operator.CONTAINS:
        return re.escape(text)
    if base is Operator.STARTSWITH:
        return "^" + re.escape(text)
    if base is Operator.ENDSWITH:
        return re.escape(text) + END_OF_TEXT
    return "^" + like_to_regex(text) + END_OF_TEXT


def like_to_regex(pattern: str) -> str:
    """SQL LIKE to regex: ``%`` any run, ``_`` one character, ``\\`` escapes the next one."""
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "%":
            out.append(ANY_CHAR + "*")
        elif char == "_":
            out.append(ANY_CHAR)
        elif char == "\\":
            out.append(re.escape(next(chars, "\\")))
        else:
            out.append(re.escape(char))
    return "".join(out)


def is_case_insensitive(operator: Operator) -> bool:
    """Whether ``operator`` matches ignoring case (the server's ``i`` regex option)."""
    return operator in CASE_INSENSITIVE


@lru_cache(maxsize=1024)
def compiled(operator: Operator, text: str) -> re.Pattern[str]:
    """The compiled pattern for in-memory evaluation."""
    flags = re.IGNORECASE if is_case_insensitive(operator) else 0
    return re.compile(text_pattern(operator, text), flags)


_BASE = {
    Operator.ICONTAINS: Operator.CONTAINS,
    Operator.ISTARTSWITH: Operator.STARTSWITH,
    Operator.IENDSWITH: Operator.ENDSWITH,
    Operator.ILIKE: Operator.LIKE,
}
