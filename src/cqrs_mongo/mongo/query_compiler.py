"""The one place that turns specifications and QueryOptions into MongoDB filters and pipelines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cqrs_mongo.specifications import QueryOptions, Specification


def compile_filter(spec: Specification | None) -> dict[str, Any]:
    """The MongoDB filter document equivalent to ``spec`` (``{}`` for ``None``).

    Raises:
        InvalidSpecificationError: the tree holds a node or value that cannot be compiled.
    """
    raise NotImplementedError


@dataclass(frozen=True)
class CompiledQuery:
    """Everything ``find`` or ``aggregate`` needs for one QueryOptions."""

    filter: dict[str, Any]
    sort: list[tuple[str, int]]
    skip: int
    limit: int | None
    projection: dict[str, int] | None

    def pipeline(self, with_total: bool = False) -> list[dict[str, Any]]:
        """The query as an aggregation pipeline, optionally with a ``$facet`` total."""
        raise NotImplementedError

    def find_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``collection.find``."""
        raise NotImplementedError


def compile_query(options: QueryOptions) -> CompiledQuery:
    """Compile filter, ordering (``_id`` tie-breaker), pagination and projection.

    Raises:
        InvalidSpecificationError: invalid specification or cursor token.
    """
    raise NotImplementedError


def encode_cursor(document: Mapping[str, Any], options: QueryOptions) -> str:
    """The opaque token of ``document`` as the last row of a page ordered by ``options``.

    Raises:
        InvalidSpecificationError: the document lacks ``_id`` or has an array sort value.
    """
    raise NotImplementedError


def decode_cursor(token: str, options: QueryOptions) -> tuple[Any, ...]:
    """The sort values a token carries, checked against ``options``' ordering.

    Raises:
        InvalidSpecificationError: the token is malformed or belongs to another ordering.
    """
    raise NotImplementedError
