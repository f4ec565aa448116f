"""``cqrs-mongo projections status``: one row per projection from ``worker.status()``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from cli_runner import Cli
from cli_shop_app import Tallies
from test_cli_commands import sell

from cqrs_mongo.mongo import MongoUnitOfWorkFactory
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.projections import RetryPolicy

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]


async def test_status_shows_lag_parked_and_checkpoint_age_of_each_projection(
    shop: tuple[Cli, Any],
) -> None:
    runner, database = shop
    await sell(database, "till-s", ("a", False), ("b", True))
    factory = MongoUnitOfWorkFactory(database.client, database.name)
    worker = MongoProjectionWorker(
        Tallies(), factory, retry=RetryPolicy(max_attempts=2, base_delay=0.01)
    )
    await worker.run_until_caught_up()
    await sell(database, "till-u", ("c", False), ("d", False), ("e", False))

    result = await asyncio.to_thread(
        runner, "projections", "status", "--app", "cli_shop_app:app", "--json"
    )
    assert result.returncode == 0, result.stderr
    [status] = json.loads(result.stdout)
    assert status["name"] == "tallies"
    assert status["state"] in {"stopped", "standby"}
    assert status["lag_events"] == 3
    assert status["parked"] == 1
    assert status["checkpoint_age_seconds"] is not None
    assert status["checkpoint_age_seconds"] >= 0
    assert set(status) == {
        "name",
        "state",
        "lag_events",
        "lag_seconds",
        "checkpoint_age_seconds",
        "parked",
        "last_error",
        "lease_owner",
        "lease_expires_at",
    }
    text = await asyncio.to_thread(runner, "projections", "status", "--app", "cli_shop_app:app")
    assert text.returncode == 0, text.stderr
    assert "tallies" in text.stdout
    assert "lag (events)" in text.stdout


async def test_status_of_an_unreachable_server_is_one_line_not_a_table(
    shop: tuple[Cli, Any],
) -> None:
    runner, _ = shop
    result = await asyncio.to_thread(
        runner,
        "projections",
        "status",
        "--app",
        "cli_shop_app:app",
        "--uri",
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300",
    )
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ServerSelectionTimeoutError")
