"""A unit whose only operation is one single-document write sends it alone: 1 command, no
transaction; any unit that does more runs in a transaction, as before (embedded server)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from tests.integration.counted_clients import counted_client

from cqrs_mongo import PersistenceDispatcher, PersistenceRegistry
from cqrs_mongo.cache import InMemoryCacheService
from cqrs_mongo.cache.caching_dispatcher import CachingPersistenceDispatcher
from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import (
    CommitOutcomeUnknownError,
    CommittedWithWriteConcernError,
    ConcurrencyError,
    TransactionError,
)
from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWork, MongoUnitOfWorkFactory, driver
from cqrs_mongo.mongo.driver import create_client
from cqrs_mongo.mongo.eventsourcing.event_sourced_repository import EventSourcedRepository
from cqrs_mongo.testing import CommandCounter, fail_command

pytestmark = pytest.mark.requires_transactions

RETRYABLE = "RetryableWriteError"


class Customer(AggregateRoot[str]):
    name: str = ""


class CustomerRepository(MongoRepository[Customer, str]):
    entity_type = Customer
    collection = "customers"


class Deposited(DomainEvent):
    amount: Decimal


class Wallet(AggregateRoot[str]):
    balance: Decimal = Decimal(0)

    def apply_Deposited(self, event: Deposited) -> None:
        self.balance += event.amount


class WalletRepository(EventSourcedRepository[Wallet, str]):
    events_collection = "events"


@pytest.fixture
def counter() -> CommandCounter:
    return CommandCounter()


@pytest_asyncio.fixture
async def client(mongo_server: Any, counter: CommandCounter) -> AsyncIterator[Any]:
    async with counted_client(mongo_server.uri, counter, "single") as client:
        yield client


@pytest.fixture
def factory(client: Any) -> MongoUnitOfWorkFactory:
    return MongoUnitOfWorkFactory(client, client.test_database_name, source="default")


@pytest.fixture
def dispatcher(factory: MongoUnitOfWorkFactory) -> PersistenceDispatcher:
    registry = PersistenceRegistry()
    for entity, repository in ((Customer, CustomerRepository), (Wallet, WalletRepository)):
        registry.register_operation(entity, repository)
        registry.register_retrieval(entity, repository)
    return PersistenceDispatcher(uow_factories={"default": factory}, registry=registry)


async def stored(client: Any, collection: str = "customers") -> list[dict[str, Any]]:
    cursor = client[client.test_database_name][collection].find({}, sort=[("_id", 1)])
    return list(await cursor.to_list())


async def saved_customer(dispatcher: PersistenceDispatcher, name: str = "Ada") -> Customer:
    customer = Customer(id=f"c-{uuid.uuid4().hex[:8]}", name=name)
    await dispatcher.apply(customer)
    return customer


async def saved_wallet(dispatcher: PersistenceDispatcher) -> Wallet:
    wallet = Wallet(id=f"w-{uuid.uuid4().hex[:8]}")
    wallet.add_event(Deposited(amount=Decimal("1")))
    wallet.add_event(Deposited(amount=Decimal("2")))
    await dispatcher.apply(wallet)
    return wallet


# --- one command ------------------------------------------------------------------------


async def test_a_new_aggregate_is_one_insert_without_a_transaction(
    dispatcher: PersistenceDispatcher, client: Any, counter: CommandCounter
) -> None:
    customer = Customer(id="c-1", name="Ada")
    with counter.measure() as counts:
        await dispatcher.apply(customer)
    assert dict(counts) == {"insert": 1}
    assert customer.version == 1
    assert await stored(client) == [{"_id": "c-1", "name": "Ada", "version": 1}]


async def test_a_version_checked_update_is_one_update_without_a_transaction(
    dispatcher: PersistenceDispatcher, client: Any, counter: CommandCounter
) -> None:
    customer = await saved_customer(dispatcher)
    customer.name = "Grace"
    with counter.measure() as counts:
        await dispatcher.apply(customer)
    assert dict(counts) == {"update": 1}
    assert customer.version == 2
    assert [(d["name"], d["version"]) for d in await stored(client)] == [("Grace", 2)]


async def test_an_append_of_one_event_is_one_insert_without_a_transaction(
    dispatcher: PersistenceDispatcher, client: Any, counter: CommandCounter
) -> None:
    wallet = await saved_wallet(dispatcher)
    wallet.add_event(Deposited(amount=Decimal("4")))
    with counter.measure() as counts:
        await dispatcher.apply(wallet)
    assert dict(counts) == {"insert": 1}
    assert (wallet.version, list(wallet.pending_events)) == (3, [])
    (loaded,) = await dispatcher.fetch_domain(Wallet, [wallet.id])
    assert (loaded.version, loaded.balance) == (3, Decimal("7"))


async def test_the_lone_write_is_a_retryable_write_with_majority_write_concern(
    mongo_server: Any, client: Any
) -> None:
    bodies: list[dict[str, Any]] = []

    class Spy(CommandCounter):
        def started(self, event: Any) -> None:
            super().started(event)
            bodies.append({"name": event.command_name, **event.command})

    watched = create_client(mongo_server.uri, event_listeners=[Spy()])
    try:
        factory = MongoUnitOfWorkFactory(watched, client.test_database_name)
        async with factory() as uow:
            await CustomerRepository().persist(Customer(id="wc"), uow)
    finally:
        await watched.close()
    (body,) = [b for b in bodies if b["name"] not in ("hello", "endSessions")]
    assert body["name"] == "insert"
    assert body["writeConcern"] == {"w": "majority"}
    assert "txnNumber" in body
    assert "lsid" in body
    assert "autocommit" not in body
    assert "startTransaction" not in body


async def test_a_run_handler_with_one_write_is_one_command(
    factory: MongoUnitOfWorkFactory, dispatcher: PersistenceDispatcher, counter: CommandCounter
) -> None:
    async def create(uow: MongoUnitOfWork) -> None:
        await dispatcher.apply(Customer(id="c-run"), uow=uow)

    with counter.measure() as counts:
        await factory.run(create)
    assert dict(counts) == {"insert": 1}


# --- still a transaction ----------------------------------------------------------------


async def test_two_writes_are_one_transaction(
    factory: MongoUnitOfWorkFactory, client: Any, counter: CommandCounter
) -> None:
    repository = CustomerRepository()
    with counter.measure() as counts:
        async with factory() as uow:
            await repository.persist(Customer(id="a"), uow)
            await repository.persist(Customer(id="b"), uow)
    assert dict(counts) == {"insert": 2, "commitTransaction": 1}
    assert [d["_id"] for d in await stored(client)] == ["a", "b"]


async def test_two_writes_roll_back_together(factory: MongoUnitOfWorkFactory, client: Any) -> None:
    repository = CustomerRepository()
    a, b = Customer(id="a"), Customer(id="b")
    with pytest.raises(RuntimeError):
        async with factory() as uow:
            await repository.persist(a, uow)
            await repository.persist(b, uow)
            raise RuntimeError("abort")
    assert await stored(client) == []
    assert (a.version, b.version) == (0, 0)


async def test_a_read_after_the_write_sees_it_in_a_transaction(
    factory: MongoUnitOfWorkFactory, dispatcher: PersistenceDispatcher, counter: CommandCounter
) -> None:
    with counter.measure() as counts:
        async with factory() as uow:
            await dispatcher.apply(Customer(id="r-1", name="Ada"), uow=uow)
            (found,) = await dispatcher.fetch_domain(Customer, ["r-1"], uow=uow)
            (again,) = await CustomerRepository().retrieve(["r-1"], uow)
    assert (found.name, found.version, again.version) == ("Ada", 1, 1)
    assert [name for name, _ in counter.commands] == ["insert", "find", "find", "commitTransaction"]
    assert counts["commitTransaction"] == 1


async def test_a_read_before_the_write_stays_in_the_transaction(
    factory: MongoUnitOfWorkFactory, dispatcher: PersistenceDispatcher, counter: CommandCounter
) -> None:
    customer = await saved_customer(dispatcher)
    with counter.measure():
        async with factory() as uow:
            (loaded,) = await dispatcher.fetch_domain(Customer, [customer.id], uow=uow)
            loaded.name = "Grace"
            await dispatcher.apply(loaded, uow=uow)
    assert [name for name, _ in counter.commands] == ["find", "update", "commitTransaction"]


async def test_direct_use_of_the_session_after_a_package_write_is_transactional(
    factory: MongoUnitOfWorkFactory, client: Any, counter: CommandCounter
) -> None:
    with counter.measure() as counts:
        async with factory() as uow:
            await CustomerRepository().persist(Customer(id="d-1"), uow)
            await uow.collection("audit").insert_one({"_id": "d-1"}, session=uow.session)
    assert dict(counts) == {"insert": 2, "commitTransaction": 1}
    assert [d["_id"] for d in await stored(client, "audit")] == ["d-1"]
    with pytest.raises(RuntimeError):
        async with factory() as uow:
            await CustomerRepository().persist(Customer(id="d-2"), uow)
            await uow.collection("audit").insert_one({"_id": "d-2"}, session=uow.session)
            raise RuntimeError("abort")
    assert [d["_id"] for d in await stored(client)] == ["d-1"]
    assert [d["_id"] for d in await stored(client, "audit")] == ["d-1"]


async def test_direct_use_of_the_session_before_a_package_write_is_transactional(
    factory: MongoUnitOfWorkFactory, counter: CommandCounter
) -> None:
    with counter.measure() as counts:
        async with factory() as uow:
            await uow.collection("audit").insert_one({"_id": "e-1"}, session=uow.session)
            await CustomerRepository().persist(Customer(id="e-1"), uow)
    assert dict(counts) == {"insert": 2, "commitTransaction": 1}


async def test_flush_sends_the_held_write_into_the_transaction(
    factory: MongoUnitOfWorkFactory, counter: CommandCounter
) -> None:
    with counter.measure() as counts:
        async with factory() as uow:
            await CustomerRepository().persist(Customer(id="f-1"), uow)
            await uow.flush()
            found = await uow.collection("customers").find_one({"_id": "f-1"}, session=uow.session)
    assert found is not None
    assert dict(counts) == {"insert": 1, "find": 1, "commitTransaction": 1}


async def test_an_append_with_a_snapshot_is_a_transaction(
    factory: MongoUnitOfWorkFactory, client: Any, counter: CommandCounter
) -> None:
    from cqrs_mongo.eventsourcing import EveryNEvents

    class Snapshotting(WalletRepository):
        snapshot_strategy = EveryNEvents(1)

    wallet = Wallet(id="s-1")
    wallet.add_event(Deposited(amount=Decimal("1")))
    with counter.measure() as counts:
        async with factory() as uow:
            await Snapshotting().persist(wallet, uow)
    assert counts["commitTransaction"] == 1
    assert counts["insert"] == 1
    assert counts["update"] == 1
    assert len(await stored(client, "snapshots")) == 1


# --- when the transaction starts ------------------------------------------------------------


async def test_the_session_handed_out_is_already_in_the_units_transaction(
    factory: MongoUnitOfWorkFactory, counter: CommandCounter
) -> None:
    with counter.measure() as counts:
        async with factory() as uow:
            session = uow.session
            assert session.in_transaction
            assert uow.session is session
    assert dict(counts) == {}  # started and committed client-side: nothing to send


async def test_only_a_unit_that_needs_its_transaction_starts_one(
    factory: MongoUnitOfWorkFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[Any] = []
    start = driver.start_transaction_now

    def counted(session: Any, **options: Any) -> None:
        started.append(session)
        start(session, **options)

    monkeypatch.setattr(driver, "start_transaction_now", counted)
    async with factory() as uow:
        await CustomerRepository().persist(Customer(id="t-1"), uow)
    assert started == []  # the write went alone: no transaction was ever started
    async with factory() as uow:
        await CustomerRepository().persist(Customer(id="t-2"), uow)
        await CustomerRepository().persist(Customer(id="t-3"), uow)
    assert len(started) == 1


async def test_a_session_whose_transaction_cannot_start_is_never_handed_out(
    factory: MongoUnitOfWorkFactory, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(session: Any, **options: Any) -> None:
        raise TransactionError("The driver could not start the unit's transaction.")

    monkeypatch.setattr(driver, "start_transaction_now", refuse)
    with pytest.raises(TransactionError):
        async with factory() as uow:
            await CustomerRepository().persist(Customer(id="u-1"), uow)
            for _ in range(2):  # asked again, it is refused again: never outside a transaction
                with pytest.raises(TransactionError):
                    _ = uow.session
            await CustomerRepository().persist(Customer(id="u-2"), uow)
    assert await stored(client) == []


# --- conflicts, rollback, callbacks ---------------------------------------------------------


async def test_a_duplicate_insert_is_a_concurrency_error_and_the_version_goes_back(
    dispatcher: PersistenceDispatcher, client: Any
) -> None:
    await dispatcher.apply(Customer(id="dup", name="first"))
    second = Customer(id="dup", name="second")
    with pytest.raises(ConcurrencyError) as caught:
        await dispatcher.apply(second)
    assert (caught.value.entity_id, caught.value.actual) == ("dup", 1)
    assert second.version == 0
    assert [d["name"] for d in await stored(client)] == ["first"]


async def test_a_stale_update_is_a_concurrency_error_and_the_version_goes_back(
    dispatcher: PersistenceDispatcher, client: Any
) -> None:
    customer = await saved_customer(dispatcher)
    (rival,) = await dispatcher.fetch_domain(Customer, [customer.id])
    rival.name = "rival"
    await dispatcher.apply(rival)
    customer.name = "stale"
    with pytest.raises(ConcurrencyError) as caught:
        await dispatcher.apply(customer)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert customer.version == 1
    assert [d["name"] for d in await stored(client)] == ["rival"]


async def test_a_stale_append_is_a_concurrency_error_and_keeps_its_events(
    dispatcher: PersistenceDispatcher,
) -> None:
    wallet = await saved_wallet(dispatcher)
    (rival,) = await dispatcher.fetch_domain(Wallet, [wallet.id])
    rival.add_event(Deposited(amount=Decimal("10")))
    await dispatcher.apply(rival)
    wallet.add_event(Deposited(amount=Decimal("5")))
    with pytest.raises(ConcurrencyError):
        await dispatcher.apply(wallet)
    assert (wallet.version, len(wallet.pending_events)) == (2, 1)


async def test_a_conflict_in_a_transactional_unit_is_a_concurrency_error_too(
    factory: MongoUnitOfWorkFactory, dispatcher: PersistenceDispatcher, client: Any
) -> None:
    await dispatcher.apply(Customer(id="t-dup"))
    fresh, dup = Customer(id="t-fresh"), Customer(id="t-dup")
    with pytest.raises(ConcurrencyError):
        async with factory() as uow:
            await dispatcher.apply(fresh, uow=uow)
            await dispatcher.apply(dup, uow=uow)
    assert (fresh.version, dup.version) == (0, 0)
    assert [d["_id"] for d in await stored(client)] == ["t-dup"]


async def test_the_runner_reruns_a_handler_whose_lone_write_conflicted(
    factory: MongoUnitOfWorkFactory, dispatcher: PersistenceDispatcher, client: Any
) -> None:
    customer = await saved_customer(dispatcher)
    runs = 0

    async def rename(uow: MongoUnitOfWork, name: str) -> None:
        nonlocal runs
        runs += 1
        target = customer.model_copy() if runs == 1 else None
        if target is None:
            (target,) = await CustomerRepository().retrieve([customer.id], uow)
        else:
            rival = customer.model_copy()
            rival.name = "rival"
            await dispatcher.apply(rival)  # moves the stored version on under the first run
        target.name = name
        await dispatcher.apply(target, uow=uow)

    await factory.run(rename, "final")
    assert runs == 2
    assert [(d["name"], d["version"]) for d in await stored(client)] == [("final", 3)]


async def test_after_commit_callbacks_run_once_the_write_is_durable(
    factory: MongoUnitOfWorkFactory, client: Any
) -> None:
    seen: list[Any] = []

    async def look() -> None:
        seen.extend(await stored(client))

    async with factory() as uow:
        uow.on_commit(look)
        await CustomerRepository().persist(Customer(id="cb"), uow)
        assert await stored(client) == []  # held until commit
    assert [d["_id"] for d in seen] == ["cb"]


async def test_a_failed_lone_write_runs_no_after_commit_callback(
    factory: MongoUnitOfWorkFactory, dispatcher: PersistenceDispatcher
) -> None:
    await dispatcher.apply(Customer(id="cb-dup"))
    calls: list[str] = []
    with pytest.raises(ConcurrencyError):
        async with factory() as uow:
            uow.on_commit(lambda: calls.append("commit"))
            uow.on_rollback(lambda: calls.append("rollback"))
            await CustomerRepository().persist(Customer(id="cb-dup"), uow)
    assert calls == ["rollback"]
    assert not uow.may_have_committed


async def test_a_rolled_back_unit_sends_nothing_and_restores_the_version(
    factory: MongoUnitOfWorkFactory, client: Any, counter: CommandCounter
) -> None:
    customer = Customer(id="rb")
    with counter.measure() as counts, pytest.raises(RuntimeError):
        async with factory() as uow:
            await CustomerRepository().persist(customer, uow)
            raise RuntimeError("abort")
    assert dict(counts) == {}
    assert customer.version == 0
    assert await stored(client) == []


class DurabilityProbe(InMemoryCacheService):
    """A cache that records, at every invalidation, what the database holds."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.at_invalidation: list[list[dict[str, Any]]] = []
        self.armed = False

    async def _look(self) -> None:
        if self.armed:
            self.at_invalidation.append(await stored(self.client))

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None = None) -> None:
        await self._look()
        await super().set_many(items, ttl)

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self._look()
        await super().delete_many(keys)


async def test_the_caching_dispatcher_invalidates_only_after_the_lone_write_is_durable(
    factory: MongoUnitOfWorkFactory, dispatcher: PersistenceDispatcher, client: Any
) -> None:
    probe = DurabilityProbe(client)
    cached = CachingPersistenceDispatcher(inner=dispatcher, cache_service=probe, default_ttl=60)
    customer = Customer(id="cache-1", name="Ada")
    await cached.apply(customer)
    (loaded,) = await cached.fetch_domain(Customer, ["cache-1"])
    loaded.name = "Grace"
    probe.armed = True
    async with factory() as uow:
        await cached.apply(loaded, uow=uow)
    assert probe.at_invalidation, "the update invalidated nothing"
    first = probe.at_invalidation[0]
    assert [(d["name"], d["version"]) for d in first] == [("Grace", 2)]
    probe.armed = False
    (fresh,) = await cached.fetch_domain(Customer, ["cache-1"])
    assert (fresh.name, fresh.version) == ("Grace", 2)


# --- faults on the lone write ---------------------------------------------------------------


async def test_a_retryable_error_once_is_retried_by_the_driver_and_written_once(
    dispatcher: PersistenceDispatcher, client: Any, counter: CommandCounter
) -> None:
    async with fail_command(client, ["insert"], error_code=91, error_labels=[RETRYABLE]):
        with counter.measure() as counts:
            await dispatcher.apply(Customer(id="f-91"))
    assert counts["insert"] == 2
    assert "commitTransaction" not in counts
    assert [d["_id"] for d in await stored(client)] == ["f-91"]


async def test_a_connection_closed_once_is_retried_and_never_duplicated(
    dispatcher: PersistenceDispatcher, client: Any
) -> None:
    wallet = await saved_wallet(dispatcher)
    wallet.add_event(Deposited(amount=Decimal("4")))
    async with fail_command(client, ["insert"], close_connection=True):
        await dispatcher.apply(wallet)
    events = await stored(client, "events")
    assert sorted(e["version"] for e in events if e["stream_id"] == wallet.id) == [1, 2, 3]


async def test_an_update_retried_after_a_dropped_connection_is_not_a_false_conflict(
    dispatcher: PersistenceDispatcher, client: Any
) -> None:
    customer = await saved_customer(dispatcher)
    customer.name = "Grace"
    async with fail_command(client, ["update"], close_connection=True):
        await dispatcher.apply(customer)
    assert customer.version == 2
    assert [(d["name"], d["version"]) for d in await stored(client)] == [("Grace", 2)]


@pytest.mark.parametrize(
    "failing",
    [
        pytest.param({"close_connection": True, "times": 10_000}, id="closed-on-every-try"),
        pytest.param({"block_ms": 3_000}, id="blocked-past-the-deadline"),
    ],
)
async def test_a_lone_write_failing_to_its_deadline_is_an_unknown_outcome_not_a_failure(
    client: Any, failing: dict[str, Any]
) -> None:
    # The driver retries a retryable write once; a write still failing, or not answered
    # within the unit's limit, ends the unit at once, rolled back in memory and fenced.
    factory = MongoUnitOfWorkFactory(client, client.test_database_name, max_commit_seconds=0.5)
    customer = Customer(id="f-doubt")
    uow = factory()
    started = time.monotonic()
    with pytest.raises(CommitOutcomeUnknownError) as caught:
        async with fail_command(client, ["insert"], **failing), uow:
            await CustomerRepository().persist(customer, uow)
    assert time.monotonic() - started < 2.5  # the deadline, the fence, the failpoint's reset
    assert not caught.value.retryable
    assert uow.may_have_committed
    assert customer.version == 0  # rolled back in memory, as for an unknown commit
    # Whatever the server did with it, the write is there at most once.
    assert await stored(client) in ([], [{"_id": "f-doubt", "name": "", "version": 1}])


async def test_a_limit_changed_on_the_factory_bounds_its_next_units(client: Any) -> None:
    # Units share settings their factory works out once; changing the factory's limit after
    # it has made units must still reach the next one (a stale 5 s limit would let the
    # blocked write below finish, and the unit commit).
    factory = MongoUnitOfWorkFactory(client, client.test_database_name)
    async with factory() as first:
        await CustomerRepository().persist(Customer(id="f-first"), first)
    factory.max_commit_seconds = 0.5
    uow = factory()
    assert uow.max_commit_seconds == 0.5
    started = time.monotonic()
    with pytest.raises(CommitOutcomeUnknownError):
        async with fail_command(client, ["insert"], block_ms=3_000), uow:
            await CustomerRepository().persist(Customer(id="f-later"), uow)
    assert time.monotonic() - started < 2.5


async def test_a_retryable_error_to_the_deadline_is_an_unknown_outcome_and_not_rerun(
    client: Any,
) -> None:
    factory = MongoUnitOfWorkFactory(client, client.test_database_name, max_commit_seconds=0.5)
    runs = 0

    async def create(uow: MongoUnitOfWork) -> None:
        nonlocal runs
        runs += 1
        await CustomerRepository().persist(Customer(id="f-twice"), uow)

    failing = {"error_code": 91, "error_labels": [RETRYABLE], "times": 10_000}
    async with fail_command(client, ["insert"], **failing):
        with pytest.raises(CommitOutcomeUnknownError):
            await factory.run(create)
    assert runs == 1


async def test_a_write_concern_error_is_committed_without_its_write_concern(
    factory: MongoUnitOfWorkFactory, client: Any
) -> None:
    runs, calls = 0, []

    async def create(uow: MongoUnitOfWork) -> None:
        nonlocal runs
        runs += 1
        uow.on_commit(lambda: calls.append("commit"))
        await CustomerRepository().persist(Customer(id="f-wce"), uow)

    concern = {"code": 100, "errmsg": "Not enough data-bearing nodes"}
    async with fail_command(client, ["insert"], write_concern_error=concern):
        with pytest.raises(CommittedWithWriteConcernError) as caught:
            await factory.run(create)
    assert caught.value.write_concern_code == 100
    assert (runs, calls) == (1, ["commit"])
    assert [d["_id"] for d in await stored(client)] == ["f-wce"]


async def test_a_write_concern_timeout_is_an_unknown_outcome(
    factory: MongoUnitOfWorkFactory, client: Any
) -> None:
    customer = Customer(id="f-wtimeout")
    concern = {"code": 64, "errmsg": "waiting for replication timed out"}
    uow = factory()
    with pytest.raises(CommitOutcomeUnknownError):
        async with fail_command(client, ["insert"], write_concern_error=concern), uow:
            await CustomerRepository().persist(customer, uow)
    assert customer.version == 0
    assert uow.may_have_committed


# --- Motor -------------------------------------------------------------------------------------


async def test_motor_units_send_a_lone_write_alone_and_two_in_a_transaction(
    mongo_server: Any,
) -> None:
    from cqrs_mongo.mongo.driver import create_motor_client

    counter = CommandCounter()
    client = create_motor_client(mongo_server.uri, event_listeners=[counter])
    name = f"single_motor_{uuid.uuid4().hex[:8]}"
    factory = MongoUnitOfWorkFactory(client, name)
    repository = CustomerRepository()
    try:
        with counter.measure() as counts:
            async with factory() as uow:
                await repository.persist(Customer(id="m-1"), uow)
        assert dict(counts) == {"insert": 1}
        with counter.measure() as counts:
            async with factory() as uow:
                await repository.persist(Customer(id="m-2"), uow)
                await repository.persist(Customer(id="m-3"), uow)
        assert dict(counts) == {"insert": 2, "commitTransaction": 1}
        with pytest.raises(ConcurrencyError):
            async with factory() as uow:
                await repository.persist(Customer(id="m-1"), uow)
        assert await client[name]["customers"].count_documents({}) == 3
    finally:
        await client.drop_database(name)
        client.close()


async def test_a_motor_lone_write_past_its_limit_is_an_unknown_outcome_stored_at_most_once(
    mongo_server: Any,
) -> None:
    # Motor runs the driver in a thread, which a cancelled task would leave running on the
    # session the unit then fences: the limit is the driver's own deadline there.
    from cqrs_mongo.mongo.driver import create_motor_client

    client = create_motor_client(mongo_server.uri)
    name = f"single_motor_{uuid.uuid4().hex[:8]}"
    factory = MongoUnitOfWorkFactory(client, name, max_commit_seconds=0.5)
    customer = Customer(id="m-slow")
    uow = factory()
    try:
        started = time.monotonic()
        with pytest.raises(CommitOutcomeUnknownError):
            async with fail_command(client, ["insert"], block_ms=3_000), uow:
                await CustomerRepository().persist(customer, uow)
        assert time.monotonic() - started < 2.5
        assert customer.version == 0
        assert uow.may_have_committed
        found = [d["_id"] async for d in client[name]["customers"].find({})]
        assert found in ([], ["m-slow"])
    finally:
        await client.drop_database(name)
        client.close()
