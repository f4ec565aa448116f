"""Per-stream positions: the last event version each projection collection applied per stream.

They live in a side collection (``projection_positions`` by default), one small document per
``(projection collection, stream)``::

    {_id: "order_summaries/<stream key>", p: "order_summaries", s: <stream id>, v: 7}

where the stream key is :func:`~cqrs_mongo.mongo.projections.stream_keys.encode_stream_key`
of the stream id (a scalar ``_id`` keeps the ``$in`` lookup on the ``_id`` index everywhere).

so a projection document's size never depends on how many streams touched it. The worker
reads the positions of a batch's streams in one ``find`` inside the batch's transaction
(a snapshot read), skips every event at or below its stream's position *before* running its
handler, and writes the moved positions with one ``bulk_write`` in the same transaction, so
a position and the writes it stands for commit together.

Only the lease holder writes positions, so while it holds the lease it may keep what it read
and wrote in memory (:class:`PositionCache`); a new lease (another token) starts empty.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Any

from pymongo import UpdateOne

from cqrs_mongo.mongo import driver
from cqrs_mongo.mongo.projections.stream_keys import encode_stream_key
from cqrs_mongo.projections import identity_key

DEFAULT_POSITIONS = "projection_positions"

DEFAULT_CACHE_LIMIT = 100_000
"""Streams remembered per projection before the cache starts over (bounds the memory)."""


def position_id(collection: str, stream_id: Any) -> str:
    """The ``_id`` of the position of ``stream_id`` in ``collection``."""
    return f"{collection}/{encode_stream_key(stream_id)}"


class StreamPositions:
    """Reads and writes the positions of one database's projections, with the leader's cache.

    Args:
        database: the database handle (with the package's codecs).
        collection_name: the positions collection.
        cache_limit: streams remembered per projection collection.
    """

    def __init__(
        self,
        database: Any,
        collection_name: str = DEFAULT_POSITIONS,
        *,
        cache_limit: int = DEFAULT_CACHE_LIMIT,
    ) -> None:
        self.collection = database[collection_name]
        self.cache_limit = cache_limit
        self._cache: dict[str, dict[Hashable, int]] = {}

    def forget(self) -> None:
        """Drop the cache (the lease changed hands, or a batch's outcome is unknown)."""
        self._cache.clear()

    async def load(
        self,
        collection: str,
        stream_ids: Iterable[Any],
        *,
        session: Any,
        unapplied: Collection[Hashable] = (),
    ) -> dict[Hashable, int]:
        """The positions of ``stream_ids`` in ``collection`` (0 for a stream never applied),
        keyed by :func:`~cqrs_mongo.projections.identity_key`; streams neither cached nor
        known to be ``unapplied`` (by key: the caller knows they have no position) are
        read in one ``find``."""
        cached = self._cache.setdefault(collection, {})
        found: dict[Hashable, int] = {}
        missing: dict[Hashable, Any] = {}
        for stream_id in stream_ids:
            key = identity_key(stream_id)
            if key in cached:
                found[key] = cached[key]
            elif key in unapplied:
                found[key] = 0
            else:
                missing[key] = stream_id
        if missing:
            ids = [position_id(collection, s) for s in missing.values()]
            cursor = self.collection.find({"_id": {"$in": ids}}, session=session)
            read = {identity_key(doc["s"]): int(doc["v"]) for doc in await driver.to_list(cursor)}
            for key in missing:
                found[key] = read.get(key, 0)
        return found

    async def save(
        self, collection: str, moved: Mapping[Hashable, tuple[Any, int]], *, session: Any
    ) -> None:
        """Write the positions ``moved`` (key -> (stream id, version)) in one bulk write.

        ``$max`` keeps a position from ever going back, whatever order writes land in.
        """
        operations = [
            UpdateOne(
                {"_id": position_id(collection, stream_id)},
                {"$max": {"v": version}, "$setOnInsert": {"p": collection, "s": stream_id}},
                upsert=True,
            )
            for stream_id, version in moved.values()
        ]
        await driver.bulk_write(self.collection, operations, session=session, ordered=False)

    def remember(
        self,
        collection: str,
        read: Mapping[Hashable, int],
        moved: Mapping[Hashable, tuple[Any, int]],
    ) -> None:
        """After a commit: keep what the batch read and wrote, for the next batches."""
        cached = self._cache.setdefault(collection, {})
        if len(cached) + len(read) > self.cache_limit:
            cached.clear()
        cached.update(read)
        for key, (_, version) in moved.items():
            cached[key] = version

    async def exist(self, collection: str) -> bool:
        """Whether any position of ``collection`` is stored."""
        prefix = re.escape(f"{collection}/")
        found = await self.collection.find_one({"_id": {"$regex": f"^{prefix}"}}, {"_id": 1})
        return found is not None

    async def delete(self, collection: str) -> None:
        """Forget every position of ``collection`` (before it is built again from scratch)."""
        self._cache.pop(collection, None)
        prefix = re.escape(f"{collection}/")
        await self.collection.delete_many({"_id": {"$regex": f"^{prefix}"}})
