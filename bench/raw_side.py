"""The floor: the same workloads written directly on ``pymongo.AsyncMongoClient`` (and redis).

Each workload has two forms. ``raw`` returns what the driver returns (dicts) and builds its
input as dicts. ``raw+validate`` produces the same objects cqrs-mongo produces: it builds the
pydantic models on the way in (``model_dump``) and validates them on the way out
(``model_validate``), so the CPU cqrs-mongo spends above it is the library's own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from bench import dataset
from bench.models import (
    CART_EVENTS,
    Cart,
    CartOpened,
    Customer,
    ItemAdded,
    OrderRow,
    SnapshotCart,
)
from cqrs_mongo.domain import utc_now

# What cqrs-mongo's unit of work uses: snapshot reads, majority commits, primary.
TRANSACTION_OPTIONS: dict[str, Any] = {
    "read_concern": ReadConcern("snapshot"),
    "write_concern": WriteConcern("majority"),
    "read_preference": ReadPreference.PRIMARY,
}


class RawSide:
    """Workloads on the bare driver; ``validate`` selects the raw+validate form."""

    def __init__(self, client: Any, database_name: str, redis: Any, validate: bool) -> None:
        self.client = client
        self.db = client[database_name]
        self.redis = redis
        self.validate = validate
        self.ids = dataset.IdSource(f"raw{'v' if validate else ''}-{uuid.uuid4().hex[:6]}")
        self._plain: dict[str, Any] = {}

    def _majority(self, collection: str) -> Any:
        handle = self._plain.get(collection)
        if handle is None:
            handle = self._plain[collection] = self.db.get_collection(
                collection, write_concern=WriteConcern("majority")
            )
        return handle

    async def _in_transaction(self, collection: str, documents: list[dict[str, Any]]) -> None:
        async with self.client.start_session() as session:
            await session.start_transaction(**TRANSACTION_OPTIONS)
            try:
                if len(documents) == 1:
                    await self.db[collection].insert_one(documents[0], session=session)
                else:
                    await self.db[collection].insert_many(documents, session=session)
            except BaseException:
                await session.abort_transaction()
                raise
            await session.commit_transaction()

    # 1. insert one new aggregate at version 1: one document is atomic by itself, so the
    #    hand-written form is a plain insert_one with majority write concern (no transaction).
    async def persist_one(self) -> None:
        seed = dataset.customer_document(0)
        if self.validate:
            customer = Customer(
                id=self.ids.next(), **{k: v for k, v in seed.items() if k[0] != "_"}
            )
            document = customer.model_dump(mode="python")
            document["_id"] = document.pop("id")
        else:
            document = {**seed, "_id": self.ids.next()}
        await self._majority("customers").insert_one(document)

    # 2. one find with $in on _id.
    async def load_ids(self, ids: Sequence[str]) -> list[Any]:
        documents: list[Any] = (
            await self.db["customers"].find({"_id": {"$in": list(ids)}}).to_list()
        )
        if not self.validate:
            return documents
        by_id = {}
        for document in documents:
            document["id"] = document.pop("_id")
            by_id[document["id"]] = Customer.model_validate(document)
        return [by_id[i] for i in ids if i in by_id]

    # 3. one aggregate: $match, then $facet {items: sort/skip/limit, total: $count}.
    async def page(self) -> tuple[list[Any], int]:
        page_stages = [{"$sort": {"created_at": -1, "_id": 1}}, {"$limit": dataset.PAGE_SIZE}]
        pipeline = [
            {"$match": dataset.page_filter()},
            {"$facet": {"items": page_stages, "total": [{"$count": "n"}]}},
        ]
        cursor = await self.db["order_rows"].aggregate(pipeline)
        rows = await cursor.to_list()
        items, totals = rows[0]["items"], rows[0]["total"]
        total = totals[0]["n"] if totals else 0
        if self.validate:
            return [_row(document) for document in items], total
        return items, total

    # 4. find sorted by _id with batch_size, iterated to the end.
    async def stream(self, rows: int, total_rows: int) -> int:
        cursor = self.db["order_rows"].find(
            dataset.stream_filter(rows, total_rows),
            sort=[("_id", ASCENDING)],
            batch_size=dataset.STREAM_BATCH,
        )
        count = 0
        async for document in cursor:
            if self.validate:
                _row(document)
            count += 1
        return count

    # 5. ten event documents of a new stream, one insert_many in a transaction.
    async def es_apply(self) -> None:
        stream_id = self.ids.next()
        if self.validate:
            # The same domain work as through cqrs-mongo: an aggregate that takes the events.
            cart = Cart(id=stream_id)
            cart.add_event(CartOpened(customer_id="cust-001"))
            for n in range(dataset.EVENTS_PER_CART - 1):
                cart.add_event(_item(n))
            events = cart.pending_events
            documents = [_event_document(stream_id, v, e) for v, e in enumerate(events, 1)]
            cart.version = len(events)
            cart.clear_pending_events()
        else:
            documents = [_raw_event(stream_id, v) for v in range(1, dataset.EVENTS_PER_CART + 1)]
        await self._in_transaction("events", documents)

    # 6. one find over the streams ($in stream_id, version > 0), sorted, one batch.
    async def es_load(self, ids: Sequence[str]) -> list[Any]:
        cursor = (
            self.db["events"]
            .find({"stream_id": {"$in": list(ids)}, "version": {"$gt": 0}}, batch_size=10_000)
            .sort([("stream_id", ASCENDING), ("version", ASCENDING)])
        )
        documents: list[Any] = await cursor.to_list()
        if not self.validate:
            return documents
        carts: dict[str, Cart] = {}
        for document in documents:
            cart = carts.get(document["stream_id"])
            if cart is None:
                cart = carts[document["stream_id"]] = Cart(id=document["stream_id"])
            cart.apply_event(_domain_event(document))
            cart.version = document["version"]
        return [carts[i] for i in ids if i in carts]

    # 7. one MGET of JSON values written by model_dump_json.
    async def prime_cache(self, rows: Sequence[OrderRow], prefix: str) -> list[str]:
        keys = [f"{prefix}:{row.id}" for row in rows]
        await self.redis.mset({k: row.model_dump_json() for k, row in zip(keys, rows, strict=True)})
        return keys

    async def cached(self, keys: Sequence[str]) -> list[Any]:
        values = await self.redis.mget(keys)
        if self.validate:
            return [OrderRow.model_validate_json(v) for v in values if v is not None]
        return [json.loads(v) for v in values if v is not None]

    # --- one event-sourced aggregate: es_stream<n> and es_snapshot ---------------------------

    # es_stream<n>: one find of the stream by equality, sorted by version, one batch.
    async def es_stream(self, stream_id: str) -> list[Any]:
        cursor = self.db["events"].find(
            {"stream_id": stream_id}, sort=[("version", ASCENDING)], batch_size=10_000
        )
        documents: list[Any] = await cursor.to_list()
        if not self.validate:
            return documents
        return [_fold(Cart(id=stream_id), documents)] if documents else []

    # es_snapshot: the snapshot by _id, then the stream's events after its version.
    async def es_snapshot(self, stream_id: str) -> list[Any]:
        snapshot = await self.db["snapshots"].find_one({"_id": stream_id})
        after = snapshot["version"] if snapshot else 0
        cursor = self.db["events"].find(
            {"stream_id": stream_id, "version": {"$gt": after}},
            sort=[("version", ASCENDING)],
            batch_size=10_000,
        )
        documents: list[Any] = await cursor.to_list()
        if not self.validate:
            return [snapshot, documents]
        if snapshot is None:
            cart = SnapshotCart(id=stream_id)
        else:
            cart = SnapshotCart.model_validate(snapshot["state"])
            cart.version = after
        return [_fold(cart, documents)] if snapshot or documents else []


def _fold(cart: Cart, documents: list[dict[str, Any]]) -> Cart:
    """``cart`` with each event document validated as its class and applied, in order."""
    for document in documents:
        cart.apply_event(_domain_event(document))
    if documents:
        cart.version = documents[-1]["version"]
    return cart


def _row(document: dict[str, Any]) -> OrderRow:
    document["id"] = document.pop("_id")
    return OrderRow.model_validate(document)


def _item(n: int) -> ItemAdded:
    return ItemAdded(sku=f"sku-{n}", quantity=1 + n % 3, price=Decimal("9.99"))


def _event_document(stream_id: str, version: int, event: Any) -> dict[str, Any]:
    return {
        "_id": event.event_id,
        "stream_id": stream_id,
        "stream_type": "Cart",
        "version": version,
        "event_type": type(event).event_type,
        "schema_version": 1,
        "payload": event.payload(),
        "metadata": {"correlation_id": None, "causation_id": None},
        "occurred_at": event.occurred_at,
    }


def _raw_event(stream_id: str, version: int) -> dict[str, Any]:
    payload: dict[str, Any]
    if version == 1:
        event_type, payload = "CartOpened", {"customer_id": "cust-001"}
    else:
        event_type = "ItemAdded"
        payload = {"sku": f"sku-{version}", "quantity": 1 + version % 3, "price": Decimal("9.99")}
    return {
        "_id": uuid.uuid4(),
        "stream_id": stream_id,
        "stream_type": "Cart",
        "version": version,
        "event_type": event_type,
        "schema_version": 1,
        "payload": payload,
        "metadata": {"correlation_id": None, "causation_id": None},
        "occurred_at": utc_now(),
    }


def _domain_event(document: dict[str, Any]) -> Any:
    metadata = document["metadata"]
    return CART_EVENTS[document["event_type"]].model_validate(
        {
            **document["payload"],
            "event_id": document["_id"],
            "aggregate_id": document["stream_id"],
            "occurred_at": document["occurred_at"],
            "correlation_id": metadata["correlation_id"],
            "causation_id": metadata["causation_id"],
        }
    )


# --- one-document writes (issue 14 item 4): the plain write, majority write concern -----------


class RawSingleWrites:
    """A version-checked update of one aggregate and an append of one event, by hand.

    The aggregate (and the stream) is created on the first call (a warm-up), then each call
    writes its next version: ``replace_one({_id, version}) `` checked for a match, or
    ``insert_one`` of the next event, both with majority write concern and no transaction.
    """

    def __init__(self, raw: RawSide) -> None:
        self.raw = raw
        self.customer: dict[str, Any] | None = None
        self.model: Customer | None = None
        self.stream_id = ""
        self.cart: Cart | None = None
        self.version = 0

    def customer_id(self) -> str | None:
        return None if self.customer is None else str(self.customer["_id"])

    def stream(self) -> str:
        return self.stream_id

    async def update_one(self) -> None:
        raw = self.raw
        collection = raw._majority("customers")
        if self.customer is None:
            self.customer = {**dataset.customer_document(0), "_id": raw.ids.next()}
            await collection.insert_one(dict(self.customer))
            if raw.validate:
                fields = {k: v for k, v in self.customer.items() if k != "_id"}
                self.model = Customer(id=self.customer["_id"], **fields)
            return
        expected = self.customer["version"]
        if raw.validate:
            assert self.model is not None
            self.model.name = f"renamed {expected}"
            document = self.model.model_dump(mode="python")
            document["_id"] = document.pop("id")
        else:
            document = {**self.customer, "name": f"renamed {expected}"}
        document["version"] = expected + 1
        checked = {"_id": document["_id"], "version": expected}
        result = await collection.replace_one(checked, document)
        if result.matched_count != 1:
            raise RuntimeError("version conflict")
        self.customer["version"] = expected + 1
        if self.model is not None:
            self.model.version = expected + 1

    async def append_one(self) -> None:
        raw = self.raw
        events = raw._majority("events")
        if not self.stream_id:
            self.stream_id = raw.ids.next()
            if raw.validate:
                self.cart = Cart(id=self.stream_id)
        self.version += 1
        if self.cart is not None:
            event = CartOpened(customer_id="cust-001") if self.version == 1 else _item(self.version)
            self.cart.add_event(event)
            document = _event_document(self.stream_id, self.version, event)
            self.cart.version = self.version
            self.cart.clear_pending_events()
        else:
            document = _raw_event(self.stream_id, self.version)
        await events.insert_one(document)
