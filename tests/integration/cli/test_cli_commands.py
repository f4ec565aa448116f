"""``cqrs-mongo`` end to end: the console script in a subprocess, the server in another."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from cli_runner import Cli
from cli_shop_app import ItemSold, Tallies

from cqrs_mongo.cli.projections import let_go
from cqrs_mongo.mongo import MongoEventStore, MongoUnitOfWorkFactory
from cqrs_mongo.mongo.projections.projection_worker import MongoProjectionWorker
from cqrs_mongo.projections import RetryPolicy

pytestmark = [pytest.mark.requires_transactions, pytest.mark.requires_change_streams]


async def cli(runner: Cli, *args: str, **env: str) -> Any:
    return await asyncio.to_thread(runner, *args, **env)


def assert_one_error_line(result: Any, *fragments: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


async def sell(database: Any, till: str, *items: tuple[str, bool]) -> None:
    factory = MongoUnitOfWorkFactory(database.client, database.name)

    async def append(uow: Any) -> None:
        store = MongoEventStore(uow.database)
        version = await store.stream_version(till, uow=uow)
        events = [
            ItemSold(sku=sku, price=Decimal("2.50"), currency="EUR", poison=poison)
            for sku, poison in items
        ]
        await store.append(till, events, version, stream_type="Till", uow=uow)

    await factory.run(append)


# --- doctor ---------------------------------------------------------------------------------


async def test_doctor_reports_a_healthy_replica_set_and_the_missing_indexes(
    shop: tuple[Cli, Any],
) -> None:
    runner, _ = shop
    before = await cli(runner, "doctor", "--app", "cli_shop_app:app", "--json")
    assert before.returncode == 3, before.stderr
    found = json.loads(before.stdout)
    assert found["topology"] == "replica_set"
    assert found["transactions"] is True
    assert found["change_streams"] is True
    assert {(m["collection"], m["name"]) for m in found["missing_indexes"]} == {
        ("shelves", "sku_unique"),
        ("events", "stream_id_1_version_1"),
    }
    ensured = await cli(runner, "indexes", "ensure", "--app", "cli_shop_app:app", "--json")
    assert ensured.returncode == 0, ensured.stderr
    assert "sku_unique" in json.loads(ensured.stdout)["shelves"]
    after = await cli(runner, "doctor", "--app", "cli_shop_app:app")
    assert after.returncode == 0, after.stderr
    assert "transactions     yes" in after.stdout
    assert "healthy" in after.stdout


async def test_doctor_exits_3_when_the_deployment_has_no_transactions(
    shop: tuple[Cli, Any], standalone_uri: str
) -> None:
    runner, _ = shop
    result = await cli(runner, "doctor", "--uri", standalone_uri)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "transactions     no" in result.stdout
    assert "PROBLEMS FOUND" in result.stdout
    as_json = json.loads((await cli(runner, "doctor", "--uri", standalone_uri, "--json")).stdout)
    assert (as_json["topology"], as_json["transactions"]) == ("standalone", False)


async def test_a_bad_uri_is_one_line_and_exit_1_with_a_traceback_only_under_debug(
    shop: tuple[Cli, Any],
) -> None:
    runner, _ = shop
    result = await cli(runner, "doctor", "--uri", "mongo://nowhere")
    assert_one_error_line(result, "InvalidURI")
    debug = await cli(runner, "--debug", "doctor", "--uri", "mongo://nowhere")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr


async def test_an_unreachable_server_is_one_line(shop: tuple[Cli, Any]) -> None:
    runner, _ = shop
    uri = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"
    assert_one_error_line(await cli(runner, "doctor", "--uri", uri), "ServerSelectionTimeoutError")


async def test_an_app_that_cannot_be_imported_is_one_line(shop: tuple[Cli, Any]) -> None:
    runner, _ = shop
    missing = await cli(runner, "projections", "status", "--app", "no_such_module:app")
    assert_one_error_line(missing, "Cannot import the app module 'no_such_module'")
    broken = await cli(runner, "projections", "status", "--app", "cli_broken_app:app")
    assert_one_error_line(broken, "RuntimeError: the settings file is missing")
    wrong = await cli(runner, "projections", "status", "--app", "cli_shop_app:registry")
    assert_one_error_line(wrong, "expected a cqrs_mongo.cli.CqrsMongoApp")
    malformed = await cli(runner, "projections", "status", "--app", "cli_shop_app")
    assert_one_error_line(malformed, "module:attribute")


# --- streams --------------------------------------------------------------------------------


async def test_streams_show_lists_events_with_the_upcast_view(shop: tuple[Cli, Any]) -> None:
    runner, database = shop
    # An event written before ItemSold gained `currency` (schema version 1).
    await database["events"].insert_one(
        {
            "_id": uuid.uuid4(),
            "stream_id": "till-1",
            "stream_type": "Till",
            "version": 1,
            "event_type": "ItemSold",
            "schema_version": 1,
            "payload": {"sku": "old", "price": "1.00"},
            "metadata": {"correlation_id": None, "causation_id": None},
            "occurred_at": datetime(2024, 1, 1, tzinfo=UTC),
        }
    )
    await sell(database, "till-1", ("new", False))
    result = await cli(runner, "streams", "show", "till-1", "--app", "cli_shop_app:app", "--json")
    assert result.returncode == 0, result.stderr
    first, second = json.loads(result.stdout)
    assert (first["version"], first["event_type"], first["schema_version"]) == (1, "ItemSold", 1)
    assert "currency" not in first["payload"]
    assert first["upcast"]["schema_version"] == 2
    assert first["upcast"]["payload"]["currency"] == "EUR"
    assert first["occurred_at"].startswith("2024-01-01T00:00:00")
    assert (second["version"], second["schema_version"]) == (2, 2)
    text = await cli(runner, "streams", "show", "till-1", "--app", "cli_shop_app:app")
    assert text.returncode == 0, text.stderr
    assert "v2 " in text.stdout
    assert "old" in text.stdout


async def test_streams_show_of_an_unknown_stream_is_one_line(shop: tuple[Cli, Any]) -> None:
    runner, _ = shop
    result = await cli(runner, "streams", "show", "nope", "--app", "cli_shop_app:app")
    assert_one_error_line(result, "Stream 'nope' not found")


# --- parked events --------------------------------------------------------------------------


async def test_parked_list_and_replay_once_the_handler_is_fixed(shop: tuple[Cli, Any]) -> None:
    runner, database = shop
    await sell(database, "till-2", ("ok", False), ("bad", True), ("after", False))
    factory = MongoUnitOfWorkFactory(database.client, database.name)
    worker = MongoProjectionWorker(
        Tallies(), factory, retry=RetryPolicy(max_attempts=2, base_delay=0.01)
    )
    await worker.run_until_caught_up()
    await let_go(worker)  # as the application's worker does when it stops
    listed = await cli(runner, "parked", "list", "tallies", "--app", "cli_shop_app:app", "--json")
    assert listed.returncode == 0, listed.stderr
    parked = json.loads(listed.stdout)
    assert [(p["stream_id"], p["version"]) for p in parked] == [("till-2", 2), ("till-2", 3)]
    assert "ValueError: cannot tally bad" in parked[0]["error"]
    assert parked[1]["held_behind"] == 2

    still_broken = await cli(runner, "parked", "replay", "tallies", "--app", "cli_shop_app:app")
    assert still_broken.returncode == 3, still_broken.stderr
    assert "Replayed 0 parked event(s) of tallies; 2 still parked." in still_broken.stdout
    fixed = await cli(
        runner,
        "parked",
        "replay",
        "tallies",
        "--app",
        "cli_shop_app:app",
        "--json",
        CQRS_CLI_HEALED="1",
    )
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout) == {"projection": "tallies", "applied": 2, "still_parked": 0}
    [tally] = await database["tallies"].find({"_id": "till-2"}).to_list(None)
    assert tally["sold"] == 3


async def test_an_unknown_projection_is_one_line(shop: tuple[Cli, Any]) -> None:
    runner, _ = shop
    result = await cli(runner, "parked", "list", "nope", "--app", "cli_shop_app:app")
    assert_one_error_line(result, "No projection named 'nope'", "known: tallies")
    rebuild = await cli(runner, "projections", "rebuild", "nope", "--app", "cli_shop_app:app")
    assert_one_error_line(rebuild, "No projection named 'nope'")


# --- rebuild --------------------------------------------------------------------------------


async def test_rebuild_prints_a_few_lines_on_a_non_terminal_and_switches_readers(
    shop: tuple[Cli, Any],
) -> None:
    runner, database = shop
    for n in range(5):
        await sell(database, f"till-r{n}", *[(f"sku-{i}", False) for i in range(20)])
    result = await cli(runner, "projections", "rebuild", "tallies", "--app", "cli_shop_app:app")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "Rebuilding tallies into tallies__v2: 100 events to replay."
    assert lines[-1].startswith("Rebuilt tallies into tallies__v2: 100 events in ")
    assert lines[-1].endswith("readers switched.")
    assert len(lines) <= 4  # at most one progress line per 10 s in between
    assert "\x1b[" not in result.stdout
    assert "\r" not in result.stdout
    alias = await database["projection_aliases"].find_one({"_id": "tallies"})
    assert alias is not None
    assert alias["collection"] == "tallies__v2"
    assert await database["tallies__v2"].count_documents({}) == 5


async def test_rebuild_on_a_terminal_draws_a_progress_bar(shop: tuple[Cli, Any]) -> None:
    runner, database = shop
    await sell(database, "till-t", *[(f"sku-{i}", False) for i in range(30)])
    result = await cli(
        runner, "projections", "rebuild", "tallies", "--app", "cli_shop_app:app", FORCE_COLOR="1"
    )
    assert result.returncode == 0, result.stderr
    assert "rebuild tallies" in result.stdout
    assert "30/30" in result.stdout
    assert "Rebuilt tallies into tallies__v2: 30 events" in result.stdout
