"""One active worker per projection: a lease in the projection's checkpoint document.

The checkpoint document of a projection collection carries::

    lease: {owner: "host:pid:1a2b3c4d", token: 17, expires_at: <UTC>, lsid: {id: <UUID>}}

* A worker **acquires** the lease when nobody holds it, it has expired, or it is its own;
  acquiring adds one to ``token`` (the fencing token).
* The holder **renews** it inside each batch's transaction, in the same update that moves
  the checkpoint, filtered on its token: once another worker has taken over (a new token),
  that update matches nothing, the batch raises :class:`ProjectionLeaseLost` and its
  transaction, with every write of the batch, is rolled back. A deposed leader can
  therefore never commit a batch, whatever its clock or its pauses.
* Standbys poll the document and take over once ``expires_at`` has passed. Each worker runs
  all its batches on one session, named by ``lsid`` in the lease; the successor kills that
  session (``killSessions``), so a transaction the dead leader left open is aborted at once
  and its documents are free, instead of staying locked for the server's 60 s transaction
  lifetime.

Expiry uses the workers' clocks: they must agree to well within the lease time (NTP).
A clock running ahead only makes a standby take over early, and fencing keeps that safe.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from cqrs_mongo.errors import ProjectionLeaseLost
from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.codecs import CODEC_OPTIONS
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWork

logger = logging.getLogger("cqrs_mongo.mongo.projections.lease")

EXPIRED = datetime(1970, 1, 1, tzinfo=UTC)


def default_owner() -> str:
    """A worker id unique to this process and object: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """Who holds a projection's lease, as stored.

    Attributes:
        owner: the holder's worker id.
        token: the fencing token of the holder's term.
        expires_at: when the lease ends unless renewed.
    """

    owner: str | None
    token: int
    expires_at: datetime | None


class ProjectionLease:
    """Acquires, renews and releases the lease of one worker on its projection collections.

    Args:
        checkpoints: the checkpoints collection.
        client: the driver client (to start the worker's session and kill a predecessor's).
        owner: this worker's id.
        seconds: how long a lease lasts without renewal.
    """

    def __init__(self, checkpoints: Any, client: Any, owner: str, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {seconds!r}.")
        self.checkpoints = checkpoints
        self.client = client
        self.owner = owner
        self.seconds = seconds
        self.collection: str | None = None
        self.token: int | None = None
        self.expires_at: datetime | None = None
        self.session: Any = None
        self._acquired: tuple[str, Mapping[str, Any] | None] | None = None

    def held(self, collection: str) -> bool:
        """Whether this worker holds the lease of ``collection`` and it has not run out."""
        return (
            self.collection == collection
            and self.token is not None
            and self.expires_at is not None
            and self.expires_at > _now()
        )

    def renewal_due(self) -> bool:
        """Whether a third of the lease has passed since the last renewal."""
        if self.expires_at is None:
            return True
        return self.expires_at - _now() < timedelta(seconds=self.seconds * 2 / 3)

    def next_expiry(self) -> datetime:
        """The expiry a renewal made now sets (every fenced write asks for it first)."""
        self._acquired = None  # the checkpoint read when the lease was taken may change now
        return _now() + timedelta(seconds=self.seconds)

    def acquired_checkpoint(self, collection: str) -> tuple[bool, Mapping[str, Any] | None]:
        """The checkpoint document of ``collection`` as this worker found it on taking the
        lease (``None``: there was none), once, while nothing has been written since:
        ``(True, document)``; otherwise ``(False, None)`` and the caller reads it."""
        acquired, self._acquired = self._acquired, None
        if acquired is None or acquired[0] != collection or not self.held(collection):
            return False, None
        return True, acquired[1]

    async def worker_session(self) -> Any:
        """The session this worker runs its batches on (started on first use)."""
        if self.session is None:
            self.session = await driver.start_session(self.client)
        return self.session

    async def acquire(self, collection: str) -> bool:
        """Take the lease of ``collection`` if it is free, expired or ours; ``False`` if not.

        On taking it from another worker, that worker's session is killed, aborting any
        transaction it left open.
        """
        session = await self.worker_session()
        now = _now()
        free = [
            {"lease": None},
            {"lease.expires_at": {"$lt": now}},
            {"lease.owner": self.owner},
        ]
        expires_at = now + timedelta(seconds=self.seconds)
        try:
            # The document as it was (None: there was none), so the previous holder and
            # the checkpoint are known without another read; the token is the one $inc set.
            before = await self.checkpoints.find_one_and_update(
                {"_id": collection, "$or": free},
                {
                    "$set": {
                        "lease.owner": self.owner,
                        "lease.expires_at": expires_at,
                        "lease.lsid": session.session_id,
                    },
                    "$inc": {"lease.token": 1},
                },
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )
        except DuplicateKeyError:
            return False  # the document exists and another worker's lease is current
        previous = (before or {}).get("lease") or {}
        self.collection = collection
        self.token = int(previous.get("token", 0)) + 1
        self.expires_at = expires_at
        self._acquired = (collection, before)
        if previous.get("lsid") is not None and previous.get("lsid") != session.session_id:
            await self._kill(previous["lsid"], previous.get("owner"))
        logger.info(
            "Projection collection %r: lease taken by %s (token %d).",
            collection,
            self.owner,
            self.token,
        )
        return True

    async def _kill(self, lsid: Any, owner: Any) -> None:
        try:
            # command() encodes with the default codecs, not the database's: name ours.
            await self.client.admin.command({"killSessions": [lsid]}, codec_options=CODEC_OPTIONS)
        except PyMongoError as exc:  # the session may be gone already: nothing to free
            logger.warning("Could not kill the session of previous leader %s: %s", owner, exc)

    def fence(self) -> dict[str, Any]:
        """The filter clause an update must carry to land only while this term lasts.

        Raises:
            ProjectionLeaseLost: no lease is held.
        """
        if self.token is None:
            raise ProjectionLeaseLost(f"Worker {self.owner}: no lease is held.")
        return {"lease.token": self.token, "lease.owner": self.owner}

    def lost(self, collection: str) -> ProjectionLeaseLost:
        """The error for an update that the fence filtered out; forgets the lease."""
        token, self.token, self.expires_at = self.token, None, None
        return ProjectionLeaseLost(
            f"Projection collection {collection!r}: worker {self.owner} lost its lease "
            f"(token {token}) to another worker; the batch was rolled back."
        )

    def renewed(self, expires_at: datetime) -> None:
        """Record that a committed update renewed the lease until ``expires_at``."""
        self.expires_at = expires_at

    async def renew(self, collection: str) -> None:
        """Renew the lease outside a batch (while idle).

        Raises:
            ProjectionLeaseLost: another worker took it over.
        """
        expires_at = self.next_expiry()
        result = await self.checkpoints.update_one(
            {"_id": collection, **self.fence()}, {"$set": {"lease.expires_at": expires_at}}
        )
        if result.matched_count == 0:
            raise self.lost(collection)
        self.renewed(expires_at)

    async def release(self) -> None:
        """Give the lease up (expire it now), so a standby takes over without waiting."""
        collection, token = self.collection, self.token
        self.collection, self.token, self.expires_at = None, None, None
        self._acquired = None
        if collection is not None and token is not None:
            await self.checkpoints.update_one(
                {"_id": collection, "lease.token": token, "lease.owner": self.owner},
                {"$set": {"lease.expires_at": EXPIRED}},
            )

    async def close(self) -> None:
        """End the worker's session."""
        session, self.session = self.session, None
        await driver.end_session(session)

    async def info(self, collection: str) -> LeaseInfo:
        """The lease of ``collection`` as stored now."""
        doc = await self.checkpoints.find_one({"_id": collection}, {"lease": 1})
        lease = (doc or {}).get("lease") or {}
        return LeaseInfo(lease.get("owner"), int(lease.get("token", 0)), lease.get("expires_at"))


class PinnedUnitOfWork(MongoUnitOfWork):
    """A unit of work whose transaction runs on a given, long-lived session.

    The worker's batches all run on its one session, the one its lease names, so that a
    successor can kill it. Leaving the unit ends the transaction, not the session. Like any
    unit, its statements run under ``transaction_timeout_seconds`` (sent as ``maxTimeMS``)
    and each commit attempt under ``max_commit_seconds``.
    """

    def __init__(self, pinned: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pinned = pinned

    async def _begin(self) -> None:
        self.session = self._pinned
        if getattr(self.session, "in_transaction", False):
            # A batch cancelled mid-flight (a non-graceful stop) may not have aborted.
            await driver.abort_transaction(self.session)
        await driver.start_transaction(
            self.session, read_concern=self.read_concern, write_concern=self.write_concern
        )
        self.in_transaction = True
        limit = self._settings.transaction_limit  # never longer than the client's timeoutMS
        if limit is not None:
            self._deadline = driver.deadline(limit)
            self._deadline.__enter__()

    async def _close(self) -> None:
        self._leave_deadline()
        self.session = None
        self.in_transaction = False


def _now() -> datetime:
    return datetime.now(UTC)
