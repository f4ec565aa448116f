"""The pytest plugin from a separate user project (issue 10.6): the README's test, marked as
strict mode needs, passes in pytest-asyncio strict and auto mode with function- and
session-scoped loops, on pymongo, Motor and mongomock; the README's ``error_code=91``
failpoint does not wait a 10 s heartbeat.

Each case writes a tiny project to a temporary directory and runs pytest on it in a
subprocess, so the project's own configuration (not this repository's) is what applies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_TESTS = textwrap.dedent(
    """
    import time

    import pytest

    from cqrs_mongo import AggregateRoot, PersistenceDispatcher, PersistenceRegistry
    from cqrs_mongo.mongo import MongoRepository, MongoUnitOfWorkFactory
    from cqrs_mongo.testing import fail_command

    MARK = {mark}


    class Order(AggregateRoot[str]):
        total: int = 0


    class OrderRepository(MongoRepository[Order, str]):
        entity_type = Order
        collection = "orders"


    def make(mongo_client, mongo_db):
        registry = PersistenceRegistry()
        registry.register_operation(Order, OrderRepository)
        registry.register_retrieval(Order, OrderRepository)
        factory = MongoUnitOfWorkFactory(mongo_client, mongo_db.name)
        dispatcher = PersistenceDispatcher(uow_factories={{"default": factory}}, registry=registry)
        return factory, dispatcher


    @MARK
    async def test_loading_100_orders_is_one_query(mongo_client, mongo_db, command_counter):
        factory, dispatcher = make(mongo_client, mongo_db)
        ids = [f"o-{{n}}" for n in range(100)]
        async with factory() as uow:
            for order_id in ids:
                await dispatcher.apply(Order(id=order_id), uow=uow)
        with command_counter.measure() as counts:
            loaded = await dispatcher.fetch_domain(Order, ids)
        assert len(loaded) == 100
        assert counts == {{"find": 1}}


    @MARK
    async def test_a_second_test_gets_its_own_database(mongo_db):
        factory, dispatcher = make(mongo_db.client, mongo_db)
        assert await dispatcher.fetch_domain(Order, ["o-1"]) == []


    @MARK
    async def test_error_91_on_commit_is_retried_without_a_heartbeat_wait(mongo_client, mongo_db):
        factory, dispatcher = make(mongo_client, mongo_db)
        started = time.monotonic()
        async with fail_command(
            mongo_client,
            ["commitTransaction"],
            error_code=91,
            error_labels=["UnknownTransactionCommitResult"],
        ):
            await dispatcher.apply(Order(id="o-91"))
        elapsed = time.monotonic() - started
        [order] = await dispatcher.fetch_domain(Order, ["o-91"])
        assert order.version == 1
        print(f"ERROR91_SECONDS={{elapsed:.2f}}")
        assert elapsed < 5.0, elapsed


    @MARK
    async def test_motor_client_on_the_same_loop(motor_client):
        assert (await motor_client.admin.command("ping"))["ok"] == 1


    @MARK
    async def test_the_same_handlers_on_mongomock(mongomock_client):
        registry = PersistenceRegistry()
        registry.register_operation(Order, OrderRepository)
        registry.register_retrieval(Order, OrderRepository)
        factory = MongoUnitOfWorkFactory(mongomock_client, "shop")
        dispatcher = PersistenceDispatcher(uow_factories={{"default": factory}}, registry=registry)
        await dispatcher.apply(Order(id="m-1", total=3))
        [order] = await dispatcher.fetch_domain(Order, ["m-1"])
        assert (order.total, order.version) == (3, 1)
    """
)

CASES = {
    "strict-function-loop": ("", "pytest.mark.asyncio"),
    "strict-session-loop": ("", 'pytest.mark.asyncio(loop_scope="session")'),
    "auto-function-loop": ("asyncio_mode = auto\n", "(lambda f: f)"),
    "auto-session-loop": (
        "asyncio_mode = auto\n"
        "asyncio_default_test_loop_scope = session\n"
        "asyncio_default_fixture_loop_scope = session\n",
        "(lambda f: f)",
    ),
}


@pytest.mark.requires_transactions
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_plugin_works_in_a_user_project(tmp_path: Path, case: str) -> None:
    ini, mark = CASES[case]
    (tmp_path / "pytest.ini").write_text(f"[pytest]\n{ini}")
    (tmp_path / "test_orders.py").write_text(USER_TESTS.format(mark=mark))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "5 passed" in output, output
    assert "ERROR91_SECONDS=" in output
