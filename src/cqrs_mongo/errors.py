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

    def __init__(self, target: type[Any], expected: str, actual: str) -> None:
        self.target = target
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{target.__qualname__} is persisted in source {expected!r}, "
            f"but the unit of work belongs to source {actual!r}."
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


class InvalidSpecificationError(CqrsMongoError, ValueError):
    """A specification or query option is malformed; nothing was sent to a database."""


class CacheError(CqrsMongoError):
    """The cache backend failed; the caching dispatcher degrades to a miss."""


class ProjectionError(CqrsMongoError):
    """A projection could not apply an event."""


class ProjectionGapError(ProjectionError):
    """An event reached a projection while earlier events of its stream had not."""


class ProjectionLeaseLost(ProjectionError):
    """Another worker took over a projection's lease; this worker's batch did not commit."""
