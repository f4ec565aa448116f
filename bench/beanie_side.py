"""The workloads through Beanie 2.x, the ODM a user might pick instead (for comparison)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from beanie import init_beanie
from beanie.odm.enums import SortDirection
from beanie.operators import In

from bench import dataset
from bench.models import BEANIE_MODELS, BeanieCustomer, BeanieEvent, BeanieOrderRow
from bench.raw_side import TRANSACTION_OPTIONS
from cqrs_mongo.domain import utc_now

ASCENDING, DESCENDING = SortDirection.ASCENDING, SortDirection.DESCENDING


class BeanieSide:
    """Beanie documents over their own client, mapped onto the same collections."""

    def __init__(self, client: Any, database_name: str) -> None:
        self.client = client
        self.database = client[database_name]
        self.ids = dataset.IdSource(f"beanie-{uuid.uuid4().hex[:6]}")

    async def start(self) -> None:
        # skip_indexes: the collections and their indexes are the shared seed's.
        await init_beanie(database=self.database, document_models=BEANIE_MODELS, skip_indexes=True)

    # 1. Document.insert in a transaction (Beanie opens none by itself).
    async def persist_one(self) -> None:
        seed = dataset.customer_document(0)
        fields = {k: v for k, v in seed.items() if k not in ("_id", "version")}
        customer = BeanieCustomer(id=self.ids.next(), version=1, **fields)
        async with self.client.start_session() as session:
            await session.start_transaction(**TRANSACTION_OPTIONS)
            await customer.insert(session=session)
            await session.commit_transaction()

    # 2. find(In(id, ids)).to_list()
    async def load_ids(self, ids: Sequence[str]) -> list[Any]:
        return await BeanieCustomer.find(In(BeanieCustomer.id, list(ids))).to_list()

    # 3. the page and a count: two queries (Beanie has no page-with-total).
    async def page(self) -> tuple[list[Any], int]:
        query = BeanieOrderRow.find(dataset.page_filter())
        items = (
            await query.sort([("created_at", DESCENDING), ("_id", ASCENDING)])
            .limit(dataset.PAGE_SIZE)
            .to_list()
        )
        total = await BeanieOrderRow.find(dataset.page_filter()).count()
        return items, total

    # 4. async iteration of find() with the same batch size.
    async def stream(self, rows: int, total_rows: int) -> int:
        query = BeanieOrderRow.find(
            dataset.stream_filter(rows, total_rows), batch_size=dataset.STREAM_BATCH
        ).sort("_id")
        count = 0
        async for _row in query:
            count += 1
        return count

    # 5. insert_many of ten event documents in a transaction.
    async def es_apply(self) -> None:
        stream_id = self.ids.next()
        events = [_event(stream_id, v) for v in range(1, dataset.EVENTS_PER_CART + 1)]
        async with self.client.start_session() as session:
            await session.start_transaction(**TRANSACTION_OPTIONS)
            await BeanieEvent.insert_many(events, session=session)
            await session.commit_transaction()

    # 6. the event documents of 100 streams (Beanie has no event sourcing: no aggregates).
    async def es_load(self, ids: Sequence[str]) -> list[Any]:
        return (
            await BeanieEvent.find(In(BeanieEvent.stream_id, list(ids)), batch_size=10_000)
            .sort([("stream_id", ASCENDING), ("version", ASCENDING)])
            .to_list()
        )


def _event(stream_id: str, version: int) -> BeanieEvent:
    payload: dict[str, Any]
    if version == 1:
        event_type, payload = "CartOpened", {"customer_id": "cust-001"}
    else:
        event_type = "ItemAdded"
        payload = {"sku": f"sku-{version}", "quantity": 1 + version % 3, "price": Decimal("9.99")}
    return BeanieEvent(
        id=uuid.uuid4(),
        stream_id=stream_id,
        stream_type="Cart",
        version=version,
        event_type=event_type,
        schema_version=1,
        payload=payload,
        metadata={"correlation_id": None, "causation_id": None},
        occurred_at=utc_now(),
    )
