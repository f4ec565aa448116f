"""Customers: a state-stored aggregate, its repository, and optimistic concurrency at work."""

from __future__ import annotations

from cqrs_mongo import AggregateRoot, ConcurrencyError, PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.mongo import (
    IndexSpec,
    MongoRepository,
    MongoUnitOfWork,
    MongoUnitOfWorkFactory,
    ensure_indexes,
)
from examples.server import mongo_client, origin, scratch_database_name

# --- domain -------------------------------------------------------------------------------


class Customer(AggregateRoot[str]):
    """A customer, stored as its current state (no event stream)."""

    name: str
    email: str
    tier: str = "standard"

    def upgrade(self) -> None:
        self.tier = "gold"


# --- infrastructure -----------------------------------------------------------------------


class CustomerRepository(MongoRepository[Customer, str]):
    """One document per customer in ``customers``; writes check the version they loaded."""

    entity_type = Customer
    collection = "customers"
    indexes = (IndexSpec(keys=[("email", 1)], unique=True, name="email_unique"),)


def setup_dispatcher(uow_factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    registry.register_operation(Customer, CustomerRepository, source="default")
    registry.register_retrieval(Customer, CustomerRepository, source="default")
    return PersistenceDispatcher(uow_factories={"default": uow_factory}, registry=registry)


# --- application --------------------------------------------------------------------------


async def upgrade_customer(
    uow: MongoUnitOfWork, dispatcher: PersistenceDispatcher, customer_id: str
) -> str:
    """Command handler: load, change, save, all in the caller's unit of work."""
    (customer,) = await dispatcher.fetch_domain(Customer, [customer_id], uow=uow)
    customer.upgrade()
    await dispatcher.apply(customer, uow=uow)
    return customer.tier


async def main() -> None:
    """Create customers, change one, and show a concurrent change being refused."""
    async with mongo_client() as client, scratch_database_name(client, "customers") as db_name:
        print(f"Customers example on {origin()}.")
        uow_factory = MongoUnitOfWorkFactory(client, db_name)
        dispatcher = setup_dispatcher(uow_factory)
        await ensure_indexes(uow_factory.database, [CustomerRepository])

        # Without a unit of work, apply() opens one and commits it.
        for number, name in enumerate(["Ada", "Grace", "Edsger"], start=1):
            await dispatcher.apply(Customer(id=f"cust-{number}", name=name, email=f"{name}@x.io"))
        print("Stored 3 customers, each at version 1.")

        # factory.run() runs the handler in a transaction, re-running it on a transient error.
        tier = await uow_factory.run(upgrade_customer, dispatcher, "cust-1")
        (ada,) = await dispatcher.fetch_domain(Customer, ["cust-1"])
        print(f"Upgraded {ada.name} to {tier}; stored version is now {ada.version}.")

        # Two writers load the same version; the second save is refused, not lost.
        (first,) = await dispatcher.fetch_domain(Customer, ["cust-2"])
        (second,) = await dispatcher.fetch_domain(Customer, ["cust-2"])
        first.name = "Grace Hopper"
        await dispatcher.apply(first)
        second.name = "G. Hopper"
        try:
            await dispatcher.apply(second)
        except ConcurrencyError as exc:
            print(f"Concurrent change refused: {exc}")
        (grace,) = await dispatcher.fetch_domain(Customer, ["cust-2"])
        print(f"cust-2 is {grace.name!r} at version {grace.version}.")
