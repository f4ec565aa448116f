"""Validation of dotted field paths, the one rule every field name passes through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError
from cqrs_mongo.specifications.limits import check_text

MAX_PATH_LENGTH = 1_000
"""Longest field path accepted, in characters."""


_KNOWN_GOOD: set[str] = set()
_KNOWN_GOOD_LIMIT = 4096


def validate_field_path(path: Any) -> str:
    """Return ``path`` if it is a safe dotted path into a document.

    A path is one or more non-empty segments joined by ``.``; no segment starts with ``$``
    (the server would read it as an operator), none is all digits (array positions are not
    supported: use ``elem_match``), and the path holds no NUL byte and no lone surrogate.

    Args:
        path: the field name to check, e.g. ``"customer.address.city"``.

    Raises:
        InvalidSpecificationError: ``path`` is not a string or breaks one of the rules above.
    """
    # The same few field names are checked on every query a service builds; remember the
    # ones already accepted (only exact str instances, so a str subclass is checked afresh).
    if type(path) is str and path in _KNOWN_GOOD:
        return path
    if not isinstance(path, str):
        raise InvalidSpecificationError(
            f"Field name must be a string, got {type(path).__name__} {path!r}."
        )
    if not path:
        raise InvalidSpecificationError("Field name must not be empty.")
    if "\x00" in path:
        raise InvalidSpecificationError(f"Field name {path!r} must not contain a NUL byte.")
    if not path.isascii():
        check_text(path, f"Field name {path!r}")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidSpecificationError(
            f"Field name is {len(path)} characters long; at most {MAX_PATH_LENGTH} are allowed."
        )
    for segment in path.split("."):
        if not segment:
            raise InvalidSpecificationError(
                f"Field name {path!r} has an empty segment (leading, trailing or double dot)."
            )
        if segment.startswith("$"):
            raise InvalidSpecificationError(
                f"Field name {path!r} has segment {segment!r} starting with '$', "
                "which a database would read as an operator."
            )
        if segment.isdigit():
            raise InvalidSpecificationError(
                f"Field name {path!r} has numeric segment {segment!r}: array positions are "
                "not supported, use elem_match."
            )
    if type(path) is str and len(_KNOWN_GOOD) < _KNOWN_GOOD_LIMIT:
        _KNOWN_GOOD.add(path)
    return path


def sort_path_value(document: Mapping[str, Any], path: str, *, row_id: Any = None) -> Any:
    """The value sort key ``path`` has in ``document`` (``None`` when missing), for keysets.

    Raises:
        InvalidSpecificationError: the path reaches an array, whose place in the server's
            sort (its smallest or largest element) no keyset condition can express.
    """
    current: Any = document
    for segment in path.split("."):
        if isinstance(current, list | tuple):
            break
        if not isinstance(current, Mapping) or segment not in current:
            return None
        current = current[segment]
    if isinstance(current, list | tuple):
        where = "a row" if row_id is None else f"the row with _id {row_id!r}"
        raise InvalidSpecificationError(
            f"Sort field {path!r} reaches an array in {where}; keyset pagination needs single "
            "values on every sort path (use offset pages, or order by a field holding one "
            "value)."
        )
    return current
