"""Validation of dotted field paths, the one rule every field name passes through."""

from __future__ import annotations

from typing import Any

from cqrs_mongo.errors import InvalidSpecificationError

MAX_PATH_LENGTH = 1_000
"""Longest field path accepted, in characters."""


def validate_field_path(path: Any) -> str:
    """Return ``path`` if it is a safe dotted path into a document.

    A path is one or more non-empty segments joined by ``.``; no segment starts with ``$``
    (the server would read it as an operator), none is all digits (array positions are not
    supported: use ``elem_match``), and the path holds no NUL byte.

    Args:
        path: the field name to check, e.g. ``"customer.address.city"``.

    Raises:
        InvalidSpecificationError: ``path`` is not a string or breaks one of the rules above.
    """
    if not isinstance(path, str):
        raise InvalidSpecificationError(
            f"Field name must be a string, got {type(path).__name__} {path!r}."
        )
    if not path:
        raise InvalidSpecificationError("Field name must not be empty.")
    if "\x00" in path:
        raise InvalidSpecificationError(f"Field name {path!r} must not contain a NUL byte.")
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
    return path
