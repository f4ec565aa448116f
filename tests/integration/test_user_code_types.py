"""User code type-checks under ``mypy --strict`` (issues 10.2 and 10.7): the spec's Pattern 2
repository with ``uow: MongoUnitOfWork``, ``Order.blank`` typed as ``Order``, ``apply`` returning
the aggregate's id type. The module is written to a temporary directory and checked by mypy in
a subprocess, as a user's project would be."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

USER_MODULE = textwrap.dedent(
    """
    from collections.abc import Sequence
    from typing import Any, assert_type

    from cqrs_mongo import (
        AggregateRoot,
        IOperationPersistence,
        IRetrievalPersistence,
        PersistenceDispatcher,
    )
    from cqrs_mongo.mongo import MongoUnitOfWork, write_versioned


    class Customer(AggregateRoot[str]):
        name: str = ""


    class CustomerRepository(
        IOperationPersistence[Customer, str], IRetrievalPersistence[Customer, str]
    ):
        async def persist(self, entity: Customer, uow: MongoUnitOfWork) -> str:
            session = uow.session
            await write_versioned(uow, "customers", entity, {"_id": entity.id, "name": entity.name})
            await uow.database["audit"].insert_one({"customer": entity.id}, session=session)
            return entity.id

        async def retrieve(self, ids: Sequence[str], uow: MongoUnitOfWork) -> list[Customer]:
            wanted = {"_id": {"$in": list(ids)}}
            cursor = uow.collection("customers").find(wanted, session=uow.session)
            rows: list[dict[str, Any]] = [row async for row in cursor]
            return [Customer(id=r["_id"], name=r["name"], version=r["version"]) for r in rows]


    async def use(dispatcher: PersistenceDispatcher) -> None:
        blank = Customer.blank("c-1")
        assert_type(blank, Customer)
        new_id = await dispatcher.apply(blank)
        assert_type(new_id, str)
        loaded = await dispatcher.fetch_domain(Customer, ["c-1"])
        assert_type(loaded, list[Customer])
    """
)


def test_user_code_with_mongo_unit_of_work_is_clean_under_mypy_strict(tmp_path: Path) -> None:
    module = tmp_path / "user_service.py"
    module.write_text(USER_MODULE)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(module),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
