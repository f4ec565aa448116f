"""``like``/``ilike`` patterns match in linear time and exactly as SQL LIKE would."""

from __future__ import annotations

import re
import time
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications import Condition, Specification
from cqrs_mongo.specifications.patterns import MAX_LIKE_WILDCARDS, like_to_regex

# Patterns the issue measured at 7 s and far more in is_satisfied_by.
HOSTILE = ["%a" * 12 + "%b", "%a" * 20 + "%b", "%" + "a%" * 30 + "b", "_%" * 15 + "b"]


@pytest.mark.parametrize("pattern", HOSTILE)
@pytest.mark.parametrize("operator", ["like", "ilike"])
def test_hostile_patterns_are_evaluated_in_linear_time(pattern: str, operator: str) -> None:
    spec = Condition("s", operator, pattern)
    document = {"s": "a" * 30}

    started = time.perf_counter()
    for _ in range(20):
        assert spec.is_satisfied_by(document) is False
    assert spec.is_satisfied_by({"s": "a" * 30 + "b"}) is True
    # Linear matching takes well under a millisecond here; backtracking took seconds.
    assert time.perf_counter() - started < 1.0


def test_wildcards_are_capped() -> None:
    Condition("s", "like", "%a" * MAX_LIKE_WILDCARDS)
    with pytest.raises(InvalidSpecificationError, match=f"at most {MAX_LIKE_WILDCARDS}"):
        Condition("s", "like", "%a" * (MAX_LIKE_WILDCARDS + 1))
    with pytest.raises(InvalidSpecificationError, match="wildcards"):
        Specification.from_dict({"field": "s", "op": "ilike", "value": "%a" * 100})


def test_runs_of_percent_collapse_into_one_wildcard() -> None:
    assert like_to_regex("a%%%b") == like_to_regex("a%b")
    Condition("s", "like", "%" * 500)  # one wildcard, however long the run


def _reference(pattern: str, text: str) -> bool:
    """SQL LIKE by dynamic programming over (pattern position, text position)."""
    tokens: list[str | None] = []  # None: %, "": _, else a literal character
    chars = iter(pattern)
    for char in chars:
        if char == "%":
            tokens.append(None)
        elif char == "_":
            tokens.append("")
        else:
            tokens.append(next(chars, "\\") if char == "\\" else char)

    @cache
    def match(i: int, j: int) -> bool:
        if i == len(tokens):
            return j == len(text)
        token = tokens[i]
        if token is None:
            return match(i + 1, j) or (j < len(text) and match(i, j + 1))
        if j == len(text):
            return False
        return (token == "" or token == text[j]) and match(i + 1, j + 1)

    return match(0, 0)


@settings(max_examples=400, deadline=None)
@given(
    pattern=st.text(alphabet="ab%_\\\n", max_size=8),
    text=st.text(alphabet="ab%_\\\n", max_size=8),
)
def test_translation_agrees_with_sql_like(pattern: str, text: str) -> None:
    compiled = re.compile("^" + like_to_regex(pattern) + r"(?![\s\S])")

    assert (compiled.search(text) is not None) is _reference(pattern, text)
    assert Condition("s", "like", pattern).is_satisfied_by({"s": text}) is _reference(pattern, text)
