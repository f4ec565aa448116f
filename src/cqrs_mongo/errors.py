"""The whole exception hierarchy of cqrs-mongo, rooted at :class:`CqrsMongoError`.

Branches follow what the caller can do about an error: fix configuration, handle a missing
entity, retry after a conflict, retry a transaction, correct a specification. Driver errors are
translated at one boundary (``cqrs_mongo.mongo``) and always chained with ``raise ... from``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class CqrsMongoError(Exception):
    """Root of every error raised by cqrs-mongo."""


class ConfigurationError(CqrsMongoError):
    """The package was wired up wrongly: a missing handler, source or method."""


class HandlerNotRegisteredError(ConfigurationError):
    """No handler of the requested kind is registered for a type."""

    def __init__(self, kind: str, target: type[Any], source: str | None = None) -> None:
        self.kind = kind
        self.target = target
        self.source = source
        where = f" in source {source!r}" if source is not None else ""
        super().__init__(f"No {kind} handler registered for {target.__qualname__}{where}.")


class SourceNotRegisteredError(ConfigurationError):
    """A handler names a source for which no unit-of-work factory was given."""

    def __init__(self, source: str, target: type[Any] | None = None) -> None:
        self.source = source
        self.target = target
        for_type = f" (needed by {target.__qualname__})" if target is not None else ""
        super().__init__(f"No unit-of-work factory registered for source {source!r}{for_type}.")


class SourceMismatchError(ConfigurationError):
    """A unit of work of one source was passed to a handler of another."""

    def __init__(
        self, target: type[Any], expected: str, actual: str | None, detail: str | None = None
    ) -> None:
        self.target = target
        self.expected = expected
        self.actual = actual
        belongs = detail or f"the unit of work belongs to source {actual!r}"
        super().__init__(
            f"{target.__qualname__} is persisted in source {expected!r}, but {belongs}."
        )


class MissingEventHandlerError(ConfigurationError):
    """An aggregate has no ``apply_<EventClassName>`` method for an event it was given."""

    def __init__(self, aggregate_type: type[Any], event_type: type[Any]) -> None:
        self.aggregate_type = aggregate_type
        self.event_type = event_type
        super().__init__(
            f"{aggregate_type.__qualname__} has no method apply_{event_type.__name__} "
            f"for event {event_type.__qualname__}."
        )


class UnknownEventTypeError(ConfigurationError):
    """A stored event names a type that no registered event class has."""

    def __init__(self, event_type: str, schema_version: int | None = None) -> None:
        self.event_type = event_type
        self.schema_version = schema_version
        version = f" (schema version {schema_version})" if schema_version is not None else ""
        super().__init__(f"Unknown event type {event_type!r}{version}: register its class.")


class NotFoundError(CqrsMongoError):
    """An entity that must exist does not."""

    def __init__(self, entity_type: str, entity_id: Any) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        super().__init__(f"{entity_type} {entity_id!r} not found.")


class ConcurrencyError(CqrsMongoError):
    """An optimistic-concurrency check failed: someone else wrote first.

    Attributes:
        entity_type: name of the aggregate type or stream type.
        entity_id: the aggregate or stream id.
        expected: the version the writer expected (``None`` for "must not exist").
        actual: the version found (``None`` when unknown or absent).
    """

    def __init__(
        self,
        entity_type: str,
        entity_id: Any,
        expected: int | None,
        actual: int | None,
        detail: str | None = None,
    ) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.expected = expected
        self.actual = actual
        want = "no existing version" if expected is None else f"version {expected}"
        found = "an unknown version" if actual is None else f"version {actual}"
        message = f"{entity_type} {entity_id!r}: expected {want}, found {found}."
        if detail:
            message = f"{message[:-1]} ({detail})."
        super().__init__(message)


class UnitOfWorkError(CqrsMongoError):
    """A unit of work was used in a state that does not allow the call."""


class TransactionError(CqrsMongoError):
    """A transaction could not be committed.

    Attributes:
        labels: the driver's error labels (``TransientTransactionError``,
            ``UnknownTransactionCommitResult``) on the last failure.
        retryable: whether running the whole unit again may succeed.
        attempts: how many times the unit (or its commit) was tried.
    """

    def __init__(
        self,
        message: str,
        labels: Iterable[str] = (),
        *,
        retryable: bool = False,
        attempts: int = 1,
    ) -> None:
        self.labels = frozenset(labels)
        self.retryable = retryable
        self.attempts = attempts
        super().__init__(message)


class TransactionsUnsupportedError(TransactionError):
    """Transactions were required, but the deployment does not support them."""


class CommitOutcomeUnknownError(TransactionError):
    """The commit's outcome could not be learned before its deadline: it may have committed.

    Raised when ``commitTransaction`` kept failing with ``UnknownTransactionCommitResult``
    (network errors, timeouts, a primary stepping down) until the commit budget ran out. The
    server transaction has been fenced (aborted if it had not committed), so nothing stays
    locked; whether the writes landed can only be learned by reading them. In-memory state
    (versions, pending events) is rolled back, so a retry with the same objects is refused
    with a :class:`ConcurrencyError` if the commit did land, never applied twice. Not
    ``retryable``: re-running the unit blindly could apply it twice.
    """


class CommittedWithWriteConcernError(TransactionError):
    """The transaction committed, but its write concern was not satisfied.

    ``commitTransaction`` answered with a ``writeConcernError`` and no error label (e.g.
    100 ``UnsatisfiableWriteConcern``, 79 ``UnknownReplWriteConcern``): the writes are
    committed on the primary but not confirmed on the nodes the write concern asked for, so
    they could still be rolled back by a failover. The unit counts as committed: in-memory
    state is kept, after-commit callbacks (cache invalidation) have run; this error is raised
    afterwards so the caller learns about the weaker durability. Not ``retryable``.

    Attributes:
        committed: always ``True``.
        write_concern_code: the server's write concern error code, when it gave one.
    """

    committed = True

    def __init__(
        self,
        message: str,
        labels: Iterable[str] = (),
        *,
        write_concern_code: int | None = None,
        attempts: int = 1,
    ) -> None:
        self.write_concern_code = write_concern_code
        super().__init__(message, labels, retryable=False, attempts=attempts)


def _where(
    kind: str, entity_type: str | None, entity_id: Any, version: int | None, field: str | None
) -> str:
    parts = [f"{entity_type or kind} {entity_id!r}"]
    if version is not None:
        parts.append(f"version {version}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ", ".join(parts)


class DocumentEncodingError(CqrsMongoError, ValueError):
    """A value cannot be stored as BSON; nothing of it was written.

    Raised before the write for payloads holding ``set``, ``date``, ``time``, ``timedelta``,
    arbitrary objects or ints beyond 64 bits, for ids that are documents, and for documents
    over the 16 MiB BSON limit.

    Attributes:
        entity_type: the aggregate or stream type.
        entity_id: the aggregate or stream id.
        version: the version that was being written, when known.
        field: the dotted path of the offending value, when known.
        reason: what is wrong with it.
    """

    def __init__(
        self,
        entity_type: str | None,
        entity_id: Any,
        version: int | None,
        field: str | None,
        reason: str,
    ) -> None:
        self.entity_type = entity_type
        self.entity_id = entity_id
        self.version = version
        self.field = field
        self.reason = reason
        where = _where("entity", entity_type, entity_id, version, field)
        super().__init__(f"Cannot store {where}: {reason}.")


def check_usable_id(entity_type: str, entity_id: Any, version: int | None = None) -> None:
    """Refuse an aggregate or stream id that is a document or an array.

    MongoDB refuses arrays as ``_id``; a document id would be stored, but a load keys what
    it found by id, and a dict cannot be a key: the aggregate could never be loaded again.

    Raises:
        DocumentEncodingError: ``entity_id`` is a dict, list, tuple or set (field ``id``).
    """
    if isinstance(entity_id, dict | list | tuple | set | frozenset):
        raise DocumentEncodingError(
            entity_type,
            entity_id,
            version,
            "id",
            f"an id must be a scalar (string, number, UUID, ObjectId...), "
            f"not a {type(entity_id).__name__}",
        )


class DocumentTooLargeError(DocumentEncodingError):
    """A document to be written exceeds the 16 MiB BSON document limit."""


class EventDecodingError(CqrsMongoError):
    """A stored event cannot be decoded: a field is missing or has the wrong shape.

    Never skipped: skipping an event would rebuild a wrong state, or let the next append
    reuse its version. The projection worker parks such an event like a poison event.

    Attributes:
        stream_type: the stream's type, when the document names one.
        stream_id: the stream id, when the document has a usable one.
        version: the event's version, when the document has one.
        field: the field that is missing or malformed.
        reason: what is wrong with it.
    """

    def __init__(
        self,
        stream_type: str | None,
        stream_id: Any,
        version: Any,
        field: str,
        reason: str,
    ) -> None:
        self.stream_type = stream_type
        self.stream_id = stream_id
        self.version = version
        self.field = field
        self.reason = reason
        shown_version = version if isinstance(version, int) else None
        where = _where("stream", stream_type, stream_id, shown_version, field)
        super().__init__(f"Cannot decode the stored event of {where}: {reason}.")


class InvalidSpecificationError(CqrsMongoError, ValueError):
    """A specification or query option is malformed; nothing was sent to a database."""


class MongomockLimitError(CqrsMongoError):
    """mongomock cannot run this operation (a limit of mongomock, not of MongoDB).

    Raised for keyset (cursor) pages and for ranges or sorts over Decimal fields; the message
    names the limit and the alternative, the embedded server
    (``cqrs_mongo.testing.EmbeddedMongoServer``). The mongomock error is the ``__cause__``.
    """


class CacheError(CqrsMongoError):
    """The cache backend failed; the caching dispatcher degrades to a miss."""


class ProjectionError(CqrsMongoError):
    """A projection could not apply an event."""


class NonTransactionalRollbackWarning(UserWarning):
    """A unit of work that wrote without a transaction (mongomock, a standalone server) was
    rolled back: its writes were applied one by one and stay."""


class ProjectionGapError(ProjectionError):
    """An event reached a projection while earlier events of its stream had not."""


class ProjectionLeaseLost(ProjectionError):
    """Another worker took over a projection's lease; this worker's batch did not commit."""
