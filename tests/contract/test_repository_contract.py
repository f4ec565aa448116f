"""Contract of MongoRepository and MongoUnitOfWork, run on every backend."""

from __future__ import annotations

import asyncio
import enum
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel, Field

from cqrs_mongo.domain import AggregateRoot, DomainEvent
from cqrs_mongo.errors import ConcurrencyError, UnitOfWorkError
from cqrs_mongo.mongo import (
    IndexBuildError,
    IndexSpec,
    MongoRepository,
    MongoUnitOfWork,
    MongoUnitOfWorkFactory,
    ensure_indexes,
)


class Tier(enum.Enum):
    BASIC = "basic"
    GOLD = "gold"


class Deposited(DomainEvent):
    amount: Decimal


class Customer(AggregateRoot[str]):
    name: str
    email: str = ""
    balance: Decimal = Decimal("0")
    tier: Tier = Tier.BASIC
    joined: datetime = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)
    reference: UUID = Field(default_factory=uuid4)
    amounts: list[Decimal] = Field(default_factory=list)
    visits: int = 0

    def apply_Deposited(self, event: Deposited) -> None:
        self.balance += event.amount


class CustomerRepository(MongoRepository[Customer, str]):
    entity_type = Customer
    collection = "customers"
    indexes: ClassVar[list[IndexSpec]] = [
        IndexSpec(keys=[("email", 1)], unique=True, name="email_unique")
    ]


class Note(BaseModel):
    """A plain pydantic model (not an AggregateRoot) with an id and a version."""

    id: UUID
    text: str
    version: int = 0


class NoteRepository(MongoRepository[Note, UUID]):
    entity_type = Note
    collection = "notes"


class RepositoryContract(ABC):
    """What every backend must do; subclasses bind a backend."""

    supports_transactions: ClassVar[bool]
    backend: Any

    @abstractmethod
    def create_backend(self) -> Any: ...

    def create_factory(self, **options: Any) -> MongoUnitOfWorkFactory:
        return self.create_backend().factory(**options)

    def create_repository(self) -> CustomerRepository:
        return CustomerRepository()

    async def save(self, *customers: Customer) -> None:
        async with self.create_factory()() as uow:
            for customer in customers:
                await self.create_repository().persist(customer, uow)

    async def load(self, *ids: str) -> list[Customer]:
        async with self.create_factory()(read_only=True) as uow:
            return await self.create_repository().retrieve(list(ids), uow)

    async def test_new_aggregate_is_stored_as_version_1_with_its_types(self) -> None:
        customer = Customer(
            id="c-1", name="Ada", balance=Decimal("10.25"), tier=Tier.GOLD, amounts=[Decimal("1.5")]
        )
        await self.save(customer)
        assert customer.version == 1
        raw = await self.create_backend().database["customers"].find_one({"_id": "c-1"})
        assert raw is not None
        assert raw["version"] == 1
        assert "id" not in raw
        (loaded,) = await self.load("c-1")
        assert loaded == customer
        assert loaded.joined.tzinfo is not None
        assert isinstance(loaded.reference, UUID)
        assert loaded.amounts == [Decimal("1.5")]

    async def test_update_replaces_state_and_bumps_version(self) -> None:
        await self.save(Customer(id="c-1", name="Ada"))
        (loaded,) = await self.load("c-1")
        loaded.name = "Ada Lovelace"
        await self.save(loaded)
        assert loaded.version == 2
        (again,) = await self.load("c-1")
        assert (again.name, again.version) == ("Ada Lovelace", 2)

    async def test_stale_version_raises_with_expected_and_actual(self) -> None:
        await self.save(Customer(id="c-1", name="Ada"))
        (first,) = await self.load("c-1")
        (second,) = await self.load("c-1")
        first.name = "first"
        await self.save(first)
        second.name = "second"
        with pytest.raises(ConcurrencyError) as caught:
            await self.save(second)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        assert "'c-1'" in str(caught.value)
        (stored,) = await self.load("c-1")
        assert (stored.name, stored.version) == ("first", 2)

    async def test_inserting_an_existing_id_is_a_concurrency_error(self) -> None:
        await self.save(Customer(id="c-1", name="Ada"))
        with pytest.raises(ConcurrencyError) as caught:
            await self.save(Customer(id="c-1", name="Impostor"))
        assert caught.value.expected is None
        (stored,) = await self.load("c-1")
        assert stored.name == "Ada"

    async def test_retrieve_keeps_order_skips_missing_and_collapses_duplicates(self) -> None:
        await self.save(*(Customer(id=f"c-{i}", name=str(i)) for i in range(5)))
        loaded = await self.load("c-3", "missing", "c-0", "c-3", "c-1")
        assert [c.id for c in loaded] == ["c-3", "c-0", "c-1"]
        assert await self.load() == []

    async def test_plain_pydantic_models_with_uuid_ids_are_versioned_too(self) -> None:
        note = Note(id=uuid4(), text="first")
        factory = self.create_factory()
        await factory.run(lambda uow: NoteRepository().persist(note, uow))
        note.text = "second"
        await factory.run(lambda uow: NoteRepository().persist(note, uow))
        stale = note.model_copy(update={"version": 1})
        with pytest.raises(ConcurrencyError) as caught:
            async with factory() as uow:
                await NoteRepository().persist(stale, uow)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        async with factory(read_only=True) as uow:
            (stored,) = await NoteRepository().retrieve([note.id], uow)
        assert (stored.text, stored.version, note.version) == ("second", 2, 2)

    async def test_retrieve_refuses_a_single_string(self) -> None:
        async with self.create_factory()(read_only=True) as uow:
            with pytest.raises(TypeError):
                await self.create_repository().retrieve("c-1", uow)

    async def test_read_only_unit_refuses_to_write(self) -> None:
        async with self.create_factory()(read_only=True) as uow:
            assert not uow.in_transaction
            with pytest.raises(UnitOfWorkError):
                await self.create_repository().persist(Customer(id="c-1", name="Ada"), uow)
        assert await self.load("c-1") == []

    async def test_pending_events_are_cleared_after_commit(self) -> None:
        customer = Customer(id="c-1", name="Ada")
        customer.add_event(Deposited(amount=Decimal("5")))
        await self.save(customer)
        assert customer.pending_events == ()

    @pytest.mark.requires_transactions
    async def test_rollback_leaves_no_trace_and_restores_versions(self) -> None:
        await self.save(Customer(id="c-1", name="Ada"))
        (existing,) = await self.load("c-1")
        fresh = Customer(id="c-2", name="Grace")
        fresh.add_event(Deposited(amount=Decimal("1")))
        with pytest.raises(RuntimeError, match="boom"):
            async with self.create_factory()() as uow:
                assert uow.in_transaction
                existing.name = "changed"
                await self.create_repository().persist(existing, uow)
                await self.create_repository().persist(fresh, uow)
                assert (existing.version, fresh.version) == (2, 1)
                raise RuntimeError("boom")
        assert (existing.version, fresh.version) == (1, 0)
        assert len(fresh.pending_events) == 1
        stored = await self.load("c-1", "c-2")
        assert [(c.id, c.name, c.version) for c in stored] == [("c-1", "Ada", 1)]

    async def test_runner_commits_and_returns_the_handler_result(self) -> None:
        async def create(uow: MongoUnitOfWork, name: str) -> str:
            return await self.create_repository().persist(Customer(id="c-9", name=name), uow)

        assert await self.create_factory().run(create, "Ada") == "c-9"
        (stored,) = await self.load("c-9")
        assert stored.name == "Ada"

    async def test_concurrent_increments_through_the_runner_lose_no_update(self) -> None:
        await self.save(Customer(id="counter", name="counter"))
        factory = self.create_factory()
        repository = self.create_repository()

        async def increment(uow: MongoUnitOfWork) -> None:
            (customer,) = await repository.retrieve(["counter"], uow)
            await asyncio.sleep(0)  # let the other tasks read the same version
            customer.visits += 1
            await repository.persist(customer, uow)

        await asyncio.gather(*(factory.run(increment) for _ in range(20)))
        (stored,) = await self.load("counter")
        assert (stored.visits, stored.version) == (20, 21)

    async def test_transaction_attempts_commit_the_block(self) -> None:
        async for attempt in self.create_factory().transaction():
            async with attempt as uow:
                await self.create_repository().persist(Customer(id="c-7", name="Ada"), uow)
        assert [c.id for c in await self.load("c-7")] == ["c-7"]

    async def test_indexes_are_created_idempotently_and_enforced(self) -> None:
        database = self.create_backend().database
        first = await ensure_indexes(database, [CustomerRepository])
        again = await ensure_indexes(database, [CustomerRepository()])
        assert first == again == {"customers": ["email_unique"]}
        await self.save(Customer(id="c-1", name="Ada", email="a@x"))
        with pytest.raises(Exception, match=r"(?i)duplicate"):
            await self.save(Customer(id="c-2", name="Eve", email="a@x"))

    async def test_unique_index_over_existing_duplicates_is_reported(self) -> None:
        await self.save(Customer(id="c-1", name="A", email="same"))
        await self.save(Customer(id="c-2", name="B", email="same"))
        with pytest.raises(IndexBuildError, match="email_unique"):
            await ensure_indexes(self.create_backend().database, [CustomerRepository])


class TestRepositoryOnMongomock(RepositoryContract):
    supports_transactions = False

    @pytest.fixture(autouse=True)
    def _bind(self, mongomock_backend: Any) -> None:
        self.backend = mongomock_backend

    def create_backend(self) -> Any:
        return self.backend


class TestRepositoryOnEmbeddedServer(RepositoryContract):
    supports_transactions = True

    @pytest.fixture(autouse=True)
    def _bind(self, embedded_backend: Any) -> None:
        self.backend = embedded_backend

    def create_backend(self) -> Any:
        return self.backend


class TestRepositoryOnMotor(RepositoryContract):
    supports_transactions = True

    @pytest.fixture(autouse=True)
    def _bind(self, motor_backend: Any) -> None:
        self.backend = motor_backend

    def create_backend(self) -> Any:
        return self.backend
