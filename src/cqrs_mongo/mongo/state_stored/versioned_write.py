"""The version-checked write of one state-stored document, for ``MongoRepository`` and users'
own repositories alike.

A new aggregate (version 0) is inserted as version 1; an existing one is replaced only where
``{_id, version}`` still matches what was loaded. Either way the aggregate's in-memory version
moves on, goes back to what it was when the unit first wrote it if the unit rolls back, and
its pending events are forgotten when the unit commits.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pymongo.errors import PyMongoError

from cqrs_mongo.errors import ConcurrencyError
from cqrs_mongo.mongo.codecs import ENCODING_ERRORS
from cqrs_mongo.mongo.errors import (
    conflict_error,
    is_duplicate_key,
    is_too_large,
    is_write_conflict,
    unstorable_error,
)
from cqrs_mongo.mongo.transactions.unit_of_work import SingleWrite, send_write
from cqrs_mongo.persistence.unit_of_work import advance_version


async def write_versioned(
    uow: Any,
    collection: str,
    entity: Any,
    document: Mapping[str, Any],
    *,
    entity_name: str | None = None,
) -> int:
    """Store ``document`` as ``entity``'s next version in ``uow``; returns the new version.

    ``document`` is what to store (with its ``_id``; its ``version`` is set here to the
    entity's version plus one). The write runs in ``uow.session``; ``entity.version`` is then
    the stored version, put back on rollback as described in the module docstring. In a
    :class:`MongoUnitOfWork` the write may be held back until the unit commits or does
    anything else (see :meth:`MongoUnitOfWork.write_single`): when it is the unit's only
    operation it is sent alone, as one command, and its ``ConcurrencyError`` comes from
    the commit.

    Example:
        >>> class CustomerRepository:  # doctest: +SKIP
        ...     async def persist(self, entity: Customer, uow: MongoUnitOfWork) -> str:
        ...         document = {"_id": entity.id, "name": entity.name}
        ...         await write_versioned(uow, "customers", entity, document)
        ...         return entity.id

    Raises:
        ConcurrencyError: another writer changed (or created) the aggregate first.
        DocumentEncodingError: a field cannot be stored in BSON, or the document is over
            16 MiB; nothing was written.
        UnitOfWorkError: the unit is not active or is read-only.
        KeyError: ``document`` has no ``_id``.
    """
    uow.record_write()
    expected: int = entity.version
    stored = dict(document)
    stored["version"] = expected + 1
    name = entity_name or type(entity).__name__

    # The write itself, called as write(database, session, in_transaction): a partial, not a
    # closure, so sending it is one coroutine, not two.
    write: SingleWrite = (
        functools.partial(_insert, collection, stored, name)
        if expected == 0
        else functools.partial(_replace, collection, stored, expected, name)
    )
    # A Mongo unit may hold the write back and send it alone at commit (one command, no
    # transaction) when it turns out to be the unit's only operation.
    await send_write(write, uow, uow.database, single=True)
    # Without a transaction the write is already durable: nothing to undo later.
    advance_version(entity, expected + 1, uow, durable=not uow.in_transaction)
    return expected + 1


async def _insert(
    collection: str,
    document: dict[str, Any],
    name: str,
    database: Any,
    session: Any,
    in_transaction: bool,
) -> None:
    target = database[collection]
    try:
        await target.insert_one(document, session=session)
    except ENCODING_ERRORS as exc:
        raise unstorable_error(exc, name, [document]) from exc
    except PyMongoError as exc:
        if is_too_large(exc):
            raise unstorable_error(exc, name, [document]) from exc
        if not (is_write_conflict(exc) or _is_id_duplicate(exc)):
            raise
        entity_id = document["_id"]
        # A failed write aborts the transaction on the server, so the stored version can
        # only be read when no transaction is involved.
        actual = None if in_transaction else await _stored_version(target, entity_id, session)
        raise conflict_error(exc, name, entity_id, None, actual) from exc


async def _replace(
    collection: str,
    document: dict[str, Any],
    expected: int,
    name: str,
    database: Any,
    session: Any,
    in_transaction: bool,
) -> None:
    target = database[collection]
    entity_id = document["_id"]
    try:
        result = await target.replace_one(
            {"_id": entity_id, "version": expected}, document, session=session
        )
    except ENCODING_ERRORS as exc:
        raise unstorable_error(exc, name, [document]) from exc
    except PyMongoError as exc:
        if is_write_conflict(exc):
            raise conflict_error(exc, name, entity_id, expected) from exc
        if is_too_large(exc):
            raise unstorable_error(exc, name, [document]) from exc
        raise
    if result.matched_count == 0:
        actual = await _stored_version(target, entity_id, session)
        detail = "deleted or never stored" if actual is None else None
        raise ConcurrencyError(name, entity_id, expected, actual, detail)


async def stored_version(target: Any, entity_id: Any, uow: Any) -> int | None:
    """The version stored for ``entity_id`` in collection ``target``, or ``None``."""
    return await _stored_version(target, entity_id, uow.session)


async def _stored_version(target: Any, entity_id: Any, session: Any) -> int | None:
    found = await target.find_one({"_id": entity_id}, {"version": 1}, session=session)
    return None if found is None else int(found.get("version", 0))


def _is_id_duplicate(exc: BaseException) -> bool:
    # A duplicate on another unique index (an email, say) is not a version conflict.
    if not is_duplicate_key(exc):
        return False
    details = getattr(exc, "details", None) or {}
    pattern = details.get("keyPattern")
    return pattern is None or list(pattern) == ["_id"]
