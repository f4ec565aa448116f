"""Hashable, type-tagged keys for document ids and stream ids held in Python dicts.

Ids are user data of any BSON-able type. Python would merge ``1``, ``1.0`` and ``True`` into
one dict key and cannot hash a dict or list id at all; a key tags each value with its type
and turns containers into tuples, so two ids share a key only when they are the same value
of the same type.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Mapping
from typing import Any

_SCALARS = frozenset({str, int, float, bool, bytes, uuid.UUID, type(None)})


def identity_key(value: Any) -> Hashable:
    """The dict key standing for id ``value``.

    Example:
        >>> identity_key(1) == identity_key(1.0)
        False
        >>> identity_key({"a": [1]}) == identity_key({"a": [1]})
        True
    """
    kind = type(value)
    if kind in _SCALARS:  # the usual ids, without the ABC checks below (same keys)
        return (kind.__name__, value)
    if isinstance(value, Mapping):
        return ("document", tuple((k, identity_key(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("array", tuple(identity_key(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return (type(value).__name__, repr(value))
    return (type(value).__name__, value)


def hashable_id(value: Any) -> Hashable:
    """``value`` itself when it can go into a set; a dict or list id as nested tuples."""
    if isinstance(value, Mapping):
        return tuple((k, hashable_id(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(hashable_id(v) for v in value)
    return value  # type: ignore[no-any-return]
