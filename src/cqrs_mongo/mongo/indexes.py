"""Declarative indexes: each handler class lists its indexes, created idempotently at start-up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import IndexModel
from pymongo.errors import OperationFailure

from cqrs_mongo.errors import ConfigurationError
from cqrs_mongo.mongo.errors import DUPLICATE_KEY, IndexBuildError, error_code

# Server codes for "an index of this name or these keys exists with other options".
INDEX_CONFLICT_CODES = frozenset({85, 86})


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """One index of a collection, named so that creating it again is a no-op.

    Attributes:
        keys: ``(field, direction)`` pairs, e.g. ``[("email", 1)]``.
        name: the index name; derived from the keys when omitted (``email_1``).
        unique: reject a second document with the same key.
        sparse: skip documents missing the indexed fields.
        partial_filter: index only documents matching this filter.
        expire_after_seconds: a TTL index.
    """

    keys: Sequence[tuple[str, int | str]]
    name: str | None = None
    unique: bool = False
    sparse: bool = False
    partial_filter: Mapping[str, Any] | None = None
    expire_after_seconds: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_model(self) -> IndexModel:
        """The pymongo ``IndexModel`` for this index."""
        name = self.name or "_".join(f"{key}_{direction}" for key, direction in self.keys)
        kwargs: dict[str, Any] = {"name": name, **self.options}
        if self.unique:
            kwargs["unique"] = True
        if self.sparse:
            kwargs["sparse"] = True
        if self.partial_filter is not None:
            kwargs["partialFilterExpression"] = dict(self.partial_filter)
        if self.expire_after_seconds is not None:
            kwargs["expireAfterSeconds"] = self.expire_after_seconds
        return IndexModel(list(self.keys), **kwargs)


def index_models(handler: Any) -> tuple[str, list[IndexModel]]:
    """The collection name and index models a handler class (or instance) declares.

    Raises:
        ConfigurationError: the handler declares indexes but no ``collection``.
    """
    declared = getattr(handler, "indexes", None) or ()
    collection = getattr(handler, "collection", None)
    if declared and not isinstance(collection, str):
        raise ConfigurationError(
            f"{_name(handler)} declares indexes but no collection name (set `collection`)."
        )
    models = [spec.to_model() if isinstance(spec, IndexSpec) else spec for spec in declared]
    return str(collection), models


async def ensure_indexes(database: Any, handlers: Iterable[Any]) -> dict[str, list[str]]:
    """Create every index the ``handlers`` declare, by name; existing ones are left alone.

    Args:
        database: the database handle (any supported driver).
        handlers: repository or query-handler classes (or instances) with ``collection`` and
            ``indexes`` attributes; those without indexes are skipped.

    Returns:
        The index names created or confirmed, per collection.

    Raises:
        IndexBuildError: an index could not be built, e.g. a unique index over existing
            duplicates, or a name already used with other options.
        ConfigurationError: a handler declares indexes but no collection.
    """
    per_collection: dict[str, list[IndexModel]] = {}
    for handler in handlers:
        collection, models = index_models(handler)
        if models:
            per_collection.setdefault(collection, []).extend(models)
    created: dict[str, list[str]] = {}
    for collection, models in per_collection.items():
        unique = list({model.document["name"]: model for model in models}.values())
        try:
            created[collection] = list(await database[collection].create_indexes(unique))
        except OperationFailure as exc:
            raise _build_error(collection, unique, exc) from exc
    return created


def _build_error(
    collection: str, models: list[IndexModel], exc: OperationFailure
) -> IndexBuildError:
    names = ", ".join(repr(model.document["name"]) for model in models)
    code = error_code(exc)
    if code == DUPLICATE_KEY:
        reason = "existing documents share a key of a unique index"
    elif code in INDEX_CONFLICT_CODES:
        reason = "an index with the same name or keys exists with other options"
    else:
        reason = f"the server refused (code {code})"
    return IndexBuildError(
        f"Indexes {names} on collection {collection!r} could not be built: {reason} "
        f"({exc.details.get('errmsg', exc) if exc.details else exc}).",
        collection=collection,
    )


def _name(handler: Any) -> str:
    return handler.__qualname__ if isinstance(handler, type) else type(handler).__qualname__
