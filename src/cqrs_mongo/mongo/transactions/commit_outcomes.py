"""What a failed ``commitTransaction`` says about the transaction, per the transactions spec.

Four outcomes: committed; not committed (the server aborted it, or refused the commit);
unknown (retry the commit, which is idempotent); committed without the write concern. Each
is reported as its own error so that no caller mistakes one for another.
"""

from __future__ import annotations

from typing import Literal

from pymongo.errors import (
    ConnectionFailure,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
)

from cqrs_mongo.errors import (
    CommitOutcomeUnknownError,
    CommittedWithWriteConcernError,
    TransactionError,
)
from cqrs_mongo.mongo.errors import (
    TRANSIENT_TRANSACTION_ERROR,
    UNKNOWN_COMMIT_RESULT,
    error_labels,
)

CommitOutcome = Literal["committed", "not_committed", "unknown"]


def commit_outcome(exc: PyMongoError) -> CommitOutcome:
    """What a failed ``commitTransaction`` says about the transaction (transactions spec).

    - ``unknown``: labelled ``UnknownTransactionCommitResult`` (the driver adds it to network
      errors, server selection errors, retryable codes, ``WriteConcernTimeout`` 64 and
      ``MaxTimeMSExpired`` 50), or any driver timeout: retry the commit.
    - ``not_committed``: labelled ``TransientTransactionError`` (the server aborted it:
      re-run the unit), or any other command error (the server refused the commit).
    - ``committed``: a write concern error with neither label (e.g. 100
      ``UnsatisfiableWriteConcern``): the server committed, the write concern was not met.
    """
    labels = error_labels(exc)
    if UNKNOWN_COMMIT_RESULT in labels or exc.timeout or isinstance(exc, ConnectionFailure):
        return "unknown"
    if TRANSIENT_TRANSACTION_ERROR in labels:
        return "not_committed"
    if isinstance(exc, WriteConcernError):
        return "committed"
    return "not_committed"


def commit_error(exc: PyMongoError, attempts: int) -> TransactionError:
    """The :class:`TransactionError` (or subclass) reporting a failed ``commitTransaction``."""
    labels = error_labels(exc)
    outcome = commit_outcome(exc)
    if outcome == "unknown":
        return CommitOutcomeUnknownError(
            f"Transaction may have committed: its outcome was still unknown after {attempts} "
            f"commit attempt(s) when the commit budget ran out: {exc}",
            labels | {UNKNOWN_COMMIT_RESULT},
            retryable=False,
            attempts=attempts,
        )
    if outcome == "committed":
        code = exc.code if isinstance(exc, OperationFailure) else None
        return CommittedWithWriteConcernError(
            f"Transaction committed, but its write concern was not satisfied (code {code}): {exc}",
            labels,
            write_concern_code=code,
            attempts=attempts,
        )
    return TransactionError(
        f"Transaction did not commit after {attempts} commit attempt(s): {exc}",
        labels,
        retryable=TRANSIENT_TRANSACTION_ERROR in labels,
        attempts=attempts,
    )


RETRYABLE_WRITE_ERROR = "RetryableWriteError"
"""The label of an error after which a retryable write may be sent again (retryable writes spec)."""

# WriteConcernTimeout and MaxTimeMSExpired: the write was applied on the primary, and may yet
# reach a majority (or be rolled back by a failover): nobody can say which.
_UNKNOWN_WRITE_CONCERN_CODES = frozenset({50, 64})


def lone_write_outcome(exc: PyMongoError) -> CommitOutcome:
    """What a failed single-document write sent without a transaction says about it.

    Such a write stands in for the unit's commit, so its failures are sorted the same way:

    - ``unknown``: a driver timeout, a dropped connection, or an error still labelled
      ``RetryableWriteError`` after the driver's own retry (the first attempt may have been
      applied), a write concern error labelled so or a ``WriteConcernTimeout`` (64) or
      ``MaxTimeMSExpired`` (50): the write may or may not be durable, and sending it again
      could apply it twice or report a conflict with itself.
    - ``committed``: any other write concern error: the write was applied, its write concern
      was not satisfied.
    - ``not_committed``: any other error (a write error, a refused command).
    """
    labels = error_labels(exc)
    if exc.timeout or isinstance(exc, ConnectionFailure) or RETRYABLE_WRITE_ERROR in labels:
        return "unknown"
    if isinstance(exc, WriteConcernError):
        return "unknown" if exc.code in _UNKNOWN_WRITE_CONCERN_CODES else "committed"
    return "not_committed"


def lone_write_timeout(seconds: float) -> NetworkTimeout:
    """The driver error standing for a single-document write that did not answer within
    ``seconds``: its outcome is unknown, as after a timeout of the driver's own."""
    return NetworkTimeout(f"The write did not answer within {seconds:.3g} s.")


def lone_write_error(exc: PyMongoError) -> TransactionError:
    """The error reporting a single-document write, sent alone, whose outcome is not clear."""
    labels = error_labels(exc)
    if lone_write_outcome(exc) == "committed":
        code = exc.code if isinstance(exc, OperationFailure) else None
        return CommittedWithWriteConcernError(
            f"Write applied, but its write concern was not satisfied (code {code}): {exc}",
            labels,
            write_concern_code=code,
            attempts=1,
        )
    return CommitOutcomeUnknownError(
        f"Write may have been applied: its outcome is unknown after the driver's retry: {exc}",
        labels | {UNKNOWN_COMMIT_RESULT},
        retryable=False,
        attempts=1,
    )
