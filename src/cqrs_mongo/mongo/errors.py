"""The boundary where driver errors become cqrs-mongo errors (always ``raise ... from``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from cqrs_mongo.errors import (
    ConcurrencyError,
    ConfigurationError,
    DocumentEncodingError,
    DocumentTooLargeError,
)
from cqrs_mongo.mongo.codecs import (
    ENCODING_ERRORS,
    MAX_DOCUMENT_BYTES,
    encoded_size,
    find_unencodable,
)

DUPLICATE_KEY = 11000
WRITE_CONFLICT = 112
BSON_OBJECT_TOO_LARGE = 10334
TRANSIENT_TRANSACTION_ERROR = "TransientTransactionError"
UNKNOWN_COMMIT_RESULT = "UnknownTransactionCommitResult"


def error_labels(exc: BaseException) -> frozenset[str]:
    """The driver's error labels on ``exc`` (empty for anything that is not a driver error)."""
    if not isinstance(exc, PyMongoError):
        return frozenset()
    labels = getattr(exc, "_error_labels", None) or ()
    return frozenset(labels)


def error_code(exc: BaseException) -> int | None:
    """The server error code of ``exc``, looking inside bulk-write errors."""
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors") or []
        return int(errors[0]["code"]) if errors else None
    if isinstance(exc, OperationFailure):
        return exc.code
    return None


def is_duplicate_key(exc: BaseException) -> bool:
    """Whether ``exc`` is a unique-index violation against committed data (11000)."""
    return error_code(exc) == DUPLICATE_KEY


def is_too_large(exc: BaseException) -> bool:
    """Whether ``exc`` is the server refusing a document over 16 MiB (10334)."""
    return error_code(exc) == BSON_OBJECT_TOO_LARGE


def is_write_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is a write conflict between transactions (112).

    Two transactions writing the same document, or inserting the same unique key, meet as a
    112 with the ``TransientTransactionError`` label, not as an 11000.
    """
    return error_code(exc) == WRITE_CONFLICT


def is_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` means another writer got there first (11000 or 112)."""
    return is_duplicate_key(exc) or is_write_conflict(exc)


def conflict_error(
    exc: BaseException,
    entity_type: str,
    entity_id: Any,
    expected: int | None,
    actual: int | None = None,
) -> ConcurrencyError:
    """A :class:`ConcurrencyError` describing ``exc``; the caller raises it ``from exc``."""
    detail = "write conflict" if is_write_conflict(exc) else "duplicate key"
    return ConcurrencyError(entity_type, entity_id, expected, actual, detail)


class IndexBuildError(ConfigurationError):
    """An index declared by a handler could not be created (e.g. duplicates under a unique key).

    Attributes:
        collection: the collection whose indexes failed.
    """

    def __init__(self, message: str, *, collection: str) -> None:
        self.collection = collection
        super().__init__(message)


def unstorable_error(
    exc: BaseException,
    entity_type: str,
    documents: Sequence[Mapping[str, Any]],
    id_key: str = "_id",
) -> DocumentEncodingError:
    """The error naming which of ``documents`` could not be stored, which field, and why.

    For a driver's encoding error (raised before the document was sent) or the server's
    10334 (over 16 MiB). Runs on the failure path only: it re-encodes to find the culprit.
    """
    for document in documents:
        found = find_unencodable(document)
        if found is not None:
            field, reason = found
            return DocumentEncodingError(
                entity_type, document.get(id_key), document.get("version"), field, reason
            )
    for document in documents:
        try:
            size = encoded_size(document)
        except ENCODING_ERRORS:
            continue
        if size > MAX_DOCUMENT_BYTES:
            return DocumentTooLargeError(
                entity_type,
                document.get(id_key),
                document.get("version"),
                None,
                f"the document is {size} bytes encoded, over the {MAX_DOCUMENT_BYTES}-byte limit",
            )
    first = documents[0] if documents else {}
    return DocumentEncodingError(
        entity_type, first.get(id_key), first.get("version"), None, f"it was refused: {exc}"
    )
