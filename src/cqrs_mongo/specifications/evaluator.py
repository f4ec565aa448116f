"""In-memory evaluation of one condition with MongoDB's query semantics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cqrs_mongo.specifications.operators import Operator


def matches_condition(
    document: Mapping[str, Any], field: str, operator: Operator, value: Any
) -> bool:
    """Whether ``document`` satisfies ``field operator value`` as MongoDB would decide."""
    raise NotImplementedError
