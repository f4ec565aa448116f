"""The state-stored repository ports behave the same in memory and on MongoDB.

One suite, bound to the in-memory adapters (what users unit-test with), mongomock-motor and the
embedded server, so the fake and the real adapters cannot drift apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from cqrs_mongo import (
    AggregateRoot,
    ConcurrencyError,
    InMemoryRepository,
    InMemoryUnitOfWorkFactory,
    PersistenceDispatcher,
    PersistenceRegistry,
)
from cqrs_mongo.mongo import MongoRepository


class Wallet(AggregateRoot[str]):
    owner: str
    balance: Decimal = Decimal("0")


class InMemoryWallets(InMemoryRepository[Wallet, str]):
    entity_type = Wallet


class MongoWallets(MongoRepository[Wallet, str]):
    entity_type = Wallet
    collection = "wallets"


class StateStoredPortContract(ABC):
    """What ``IOperationPersistence`` + ``IRetrievalPersistence`` promise on every backend."""

    supports_transactions: ClassVar[bool]

    @abstractmethod
    def create_factory(self) -> Any: ...

    @abstractmethod
    def repository_class(self) -> type[Any]: ...

    def dispatcher(self) -> PersistenceDispatcher:
        registry = PersistenceRegistry()
        registry.register_operation(Wallet, self.repository_class())
        registry.register_retrieval(Wallet, self.repository_class())
        return PersistenceDispatcher({"default": self.create_factory()}, registry)

    async def test_new_aggregate_is_stored_at_version_one(self) -> None:
        dispatcher = self.dispatcher()
        wallet = Wallet(id="w1", owner="ada", balance=Decimal("1.10"))
        assert await dispatcher.apply(wallet) == "w1"
        assert wallet.version == 1
        [loaded] = await dispatcher.fetch_domain(Wallet, ["w1"])
        assert (loaded.owner, loaded.balance, loaded.version) == ("ada", Decimal("1.10"), 1)

    async def test_update_moves_the_version_and_a_stale_copy_conflicts(self) -> None:
        dispatcher = self.dispatcher()
        await dispatcher.apply(Wallet(id="w1", owner="ada"))
        [mine] = await dispatcher.fetch_domain(Wallet, ["w1"])
        [theirs] = await dispatcher.fetch_domain(Wallet, ["w1"])
        mine.balance = Decimal("5")
        await dispatcher.apply(mine)
        theirs.balance = Decimal("7")
        with pytest.raises(ConcurrencyError) as info:
            await dispatcher.apply(theirs)
        assert (info.value.expected, info.value.actual) == (1, 2)
        [stored] = await dispatcher.fetch_domain(Wallet, ["w1"])
        assert (stored.balance, stored.version) == (Decimal("5"), 2)

    async def test_inserting_an_existing_id_is_a_conflict(self) -> None:
        dispatcher = self.dispatcher()
        await dispatcher.apply(Wallet(id="w1", owner="ada"))
        with pytest.raises(ConcurrencyError):
            await dispatcher.apply(Wallet(id="w1", owner="eve"))
        [stored] = await dispatcher.fetch_domain(Wallet, ["w1"])
        assert stored.owner == "ada"

    async def test_retrieve_keeps_the_order_asked_skips_missing_and_collapses_repeats(
        self,
    ) -> None:
        dispatcher = self.dispatcher()
        for wallet_id in ("a", "b", "c"):
            await dispatcher.apply(Wallet(id=wallet_id, owner=wallet_id))
        loaded = await dispatcher.fetch_domain(Wallet, ["c", "x", "a", "c", "b"])
        assert [w.id for w in loaded] == ["c", "a", "b"]

    @pytest.mark.requires_transactions
    async def test_a_failing_unit_leaves_nothing_and_restores_the_version(self) -> None:
        dispatcher = self.dispatcher()
        factory = self.create_factory()
        wallet = Wallet(id="w1", owner="ada")
        with pytest.raises(RuntimeError, match="abort"):
            async with factory() as uow:
                await dispatcher.apply(wallet, uow=uow)
                raise RuntimeError("abort")
        assert wallet.version == 0
        assert await dispatcher.fetch_domain(Wallet, ["w1"]) == []


class TestStateStoredInMemory(StateStoredPortContract):
    supports_transactions = True

    @pytest.fixture(autouse=True)
    def _bind(self) -> None:
        self.factory = InMemoryUnitOfWorkFactory()

    def create_factory(self) -> Any:
        return self.factory

    def repository_class(self) -> type[Any]:
        return InMemoryWallets


class TestStateStoredOnMongomock(StateStoredPortContract):
    supports_transactions = False

    @pytest.fixture(autouse=True)
    def _bind(self, mongomock_backend: Any) -> None:
        self.backend = mongomock_backend

    def create_factory(self) -> Any:
        return self.backend.factory()

    def repository_class(self) -> type[Any]:
        return MongoWallets


class TestStateStoredOnEmbeddedServer(StateStoredPortContract):
    supports_transactions = True

    @pytest.fixture(autouse=True)
    def _bind(self, embedded_backend: Any) -> None:
        self.backend = embedded_backend

    def create_factory(self) -> Any:
        return self.backend.factory()

    def repository_class(self) -> type[Any]:
        return MongoWallets
