"""Event streams for the projection tests: accounts of ``amount`` events, written through the
package's event store (indexes included), ``acct-00``, ``acct-01``, ..."""

from __future__ import annotations

from typing import Any

from cqrs_mongo.mongo.eventsourcing.event_store import MongoEventStore
from cqrs_mongo.mongo.transactions.unit_of_work import MongoUnitOfWorkFactory


def account(n: int) -> str:
    return f"acct-{n:02d}"


async def write_accounts(
    factory: MongoUnitOfWorkFactory, event_class: Any, streams: int, per_stream: int
) -> None:
    """``streams`` accounts; event ``k`` of account ``n`` has ``amount = n + k``."""
    async with factory() as uow:
        store = MongoEventStore(uow.database)
        await store.ensure_indexes()
        for n in range(streams):
            events = [event_class(amount=n + k) for k in range(per_stream)]
            await store.append(account(n), events, 0, stream_type="Account", uow=uow)
