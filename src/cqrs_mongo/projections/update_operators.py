"""MongoDB update documents for projections: checking, merging, and applying them in memory.

Projection handlers express changes as update documents (``{"$set": {...}, "$inc": {...}}``).
This module checks them (operators only, no bookkeeping fields touched), merges two of them
made for one document by one event, and applies them to plain dicts for the in-memory store,
with the server's semantics for the operators it supports.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from cqrs_mongo.errors import ProjectionError

BOOKKEEPING_FIELDS = ("_applied", "_applied_count")
"""Fields earlier versions of the projection store kept in each document (a per-stream map of
applied versions and a counter). Stream positions now live in their own collection; handlers
still may not write these names, and readers strip them from documents written before."""

SUPPORTED_OPERATORS = frozenset(
    {"$set", "$unset", "$inc", "$min", "$max", "$push", "$addToSet", "$setOnInsert"}
)

Update = dict[str, dict[str, Any]]


def check_update(update: Mapping[str, Any]) -> Update:
    """``update`` as a plain dict, after checking that it is a supported update document.

    Raises:
        ProjectionError: a key is not a supported operator, an operator's value is not a
            document, or a field is ``_id``, a bookkeeping field or starts with ``$``.
    """
    if not update:
        raise ProjectionError("Update document is empty: expected at least one operator.")
    checked: Update = {}
    for operator, fields in update.items():
        if operator not in SUPPORTED_OPERATORS:
            raise ProjectionError(
                f"Update operator {operator!r} is not supported: expected one of "
                f"{', '.join(sorted(SUPPORTED_OPERATORS))}."
            )
        if type(fields) is not dict and not isinstance(fields, Mapping):
            raise ProjectionError(f"Update operator {operator!r}: expected a document of fields.")
        for path in fields:
            if path not in _CHECKED_PATHS:
                _check_path(path)
        checked[operator] = dict(fields)
    return checked


_CHECKED_PATHS: set[str] = set()
"""Field paths found valid before: handlers use a few paths for every event they handle."""
_CHECKED_PATHS_LIMIT = 10_000


def _check_path(path: Any) -> None:
    if not isinstance(path, str) or not path or path.startswith("$"):
        raise ProjectionError(f"Field {path!r} cannot be updated: expected a field name.")
    root = path.split(".", 1)[0]
    if root == "_id" or root in BOOKKEEPING_FIELDS:
        raise ProjectionError(f"Field {path!r} is owned by the projection store.")
    if len(_CHECKED_PATHS) < _CHECKED_PATHS_LIMIT:
        _CHECKED_PATHS.add(path)


def merge_updates(first: Update, second: Update) -> Update:
    """One update doing ``first`` then ``second`` (both made for one document by one event).

    A field set twice keeps the later value, increments add up, pushes concatenate.

    Raises:
        ProjectionError: the same field appears twice under another operator.
    """
    merged: Update = {op: dict(fields) for op, fields in first.items()}
    for operator, fields in second.items():
        target = merged.setdefault(operator, {})
        for path, value in fields.items():
            if path not in target or operator in ("$set", "$setOnInsert", "$unset"):
                target[path] = value
            elif operator == "$inc":
                target[path] = target[path] + value
            elif operator in ("$push", "$addToSet"):
                target[path] = {"$each": [*_each(target[path]), *_each(value)]}
            else:
                raise ProjectionError(
                    f"Field {path!r} is updated twice with {operator} by one event; "
                    "expected one update per field."
                )
    return merged


def _each(value: Any) -> list[Any]:
    if isinstance(value, Mapping) and "$each" in value:
        return list(value["$each"])
    return [value]


def apply_update(document: dict[str, Any], update: Update, *, inserting: bool) -> None:
    """Apply ``update`` to ``document`` in place, as the server would.

    Raises:
        ProjectionError: an operator meets a value of the wrong type (``$inc`` on text).
    """
    for operator, fields in update.items():
        for path, value in fields.items():
            if operator == "$setOnInsert" and not inserting:
                continue
            _APPLIERS[operator](document, path, value)


def _parent(document: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, leaf = path.split(".")
    node = document
    for name in parents:
        child = node.setdefault(name, {})
        if not isinstance(child, dict):
            raise ProjectionError(f"Field {path!r}: {name!r} is not a document.")
        node = child
    return node, leaf


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    node, leaf = _parent(document, path)
    node[leaf] = copy.deepcopy(value)


def _unset(document: dict[str, Any], path: str, value: Any) -> None:
    node, leaf = _parent(document, path)
    node.pop(leaf, None)


def _inc(document: dict[str, Any], path: str, value: Any) -> None:
    node, leaf = _parent(document, path)
    current = node.get(leaf, 0)
    if isinstance(current, bool) or not isinstance(current, int | float | type(value)):
        raise ProjectionError(f"Field {path!r}: cannot $inc a {type(current).__name__}.")
    node[leaf] = current + value


def _min(document: dict[str, Any], path: str, value: Any) -> None:
    node, leaf = _parent(document, path)
    if leaf not in node or value < node[leaf]:
        node[leaf] = copy.deepcopy(value)


def _max(document: dict[str, Any], path: str, value: Any) -> None:
    node, leaf = _parent(document, path)
    if leaf not in node or value > node[leaf]:
        node[leaf] = copy.deepcopy(value)


def _push(document: dict[str, Any], path: str, value: Any) -> None:
    node, leaf = _parent(document, path)
    node.setdefault(leaf, []).extend(copy.deepcopy(_each(value)))


def _add_to_set(document: dict[str, Any], path: str, value: Any) -> None:
    node, leaf = _parent(document, path)
    items = node.setdefault(leaf, [])
    for item in _each(value):
        if item not in items:
            items.append(copy.deepcopy(item))


_APPLIERS = {
    "$set": _set,
    "$setOnInsert": _set,
    "$unset": _unset,
    "$inc": _inc,
    "$min": _min,
    "$max": _max,
    "$push": _push,
    "$addToSet": _add_to_set,
}
