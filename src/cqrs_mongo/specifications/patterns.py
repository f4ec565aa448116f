"""Regular expressions for the text operators, written once for the server and the evaluator."""

from __future__ import annotations

import re
from functools import lru_cache

from cqrs_mongo.specifications.operators import CASE_INSENSITIVE, Operator

MAX_LIKE_WILDCARDS = 32
"""Most ``%`` wildcards (runs counting once) a ``like``/``ilike`` pattern may hold."""

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
    """SQL LIKE to a regex that matches in linear time (anchors are the caller's).

    ``%`` is any run of characters, ``_`` one character, ``\\`` escapes the next one; a run
    of ``%`` is one wildcard. Translating each ``%`` to ``[\\s\\S]*`` lets a backtracking
    engine (PCRE on the server, ``re`` in memory) retry every split of the text between
    wildcards, exponential in their number. Instead the pattern is cut at its wildcards
    into fixed-width segments, and each middle segment is found at its *first* occurrence
    with a tempered loop, ``(?:(?!seg)[\\s\\S])*seg``: the loop cannot step over a
    place where ``seg`` starts, so there is one way to match it and a failure later on
    costs one pass back over the text, not a new search. Taking the first occurrence
    loses no match, since a segment has a fixed width and whatever follows it starts
    with a wildcard. The last segment must end the text: ``[\\s\\S]*seg``.
    """
    segments = like_segments(pattern)
    if len(segments) == 1:
        return segments[0]
    first, *middle, last = segments
    found = "".join(f"(?:(?!{seg}){ANY_CHAR})*{seg}" for seg in middle)
    return f"{first}{found}{ANY_CHAR}*{last}"


def like_segments(pattern: str) -> list[str]:
    """The regex pieces of ``pattern`` between its wildcard runs (first and last may be empty).

    ``len(like_segments(p)) - 1`` is the number of ``%`` wildcards once runs are collapsed.
    """
    segments: list[str] = []
    current: list[str] = []
    after_wildcard = False
    chars = iter(pattern)
    for char in chars:
        if char == "%":
            if not after_wildcard:
                segments.append("".join(current))
                current = []
            after_wildcard = True
            continue
        after_wildcard = False
        if char == "_":
            current.append(ANY_CHAR)
        elif char == "\\":
            current.append(re.escape(next(chars, "\\")))
        else:
            current.append(re.escape(char))
    segments.append("".join(current))
    return segments


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
