"""The examples run with one command each, exit 0 and do what they print."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_example(module: str, **env: str) -> str:
    """Run ``python -m <module>`` from the repository root; return its output."""
    completed = subprocess.run(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_customers_example_refuses_a_concurrent_change() -> None:
    out = run_example("examples.customers")
    assert "Upgraded Ada to gold; stored version is now 2." in out
    assert "Concurrent change refused: Customer 'cust-2': expected version 1" in out
    assert "cust-2 is 'Grace Hopper' at version 2." in out


def test_multi_source_example_keeps_each_context_in_its_database() -> None:
    out = run_example("examples.multi_source")
    assert "Refused across sources:" in out
    assert "Documents: 1 in orders, 1 in invoices." in out


@pytest.mark.redis
def test_ecommerce_demo_stores_events_projects_them_and_serves_a_cached_read() -> None:
    out = run_example("examples.ecommerce")
    assert "SubmitOrder(order-1)" in out
    assert "Event store: 4 events; stream order-1:\n  v1 OrderCreated\n  v2 OrderSubmitted" in out
    assert "aggregate order-1: submitted, version 2" in out
    # The projection saw both events of order-1, and only Ada's orders match her query.
    assert (
        "Query GetCustomerOrders(cust-ada): 2 projection rows, newest first:\n"
        "  order-2: created, total 5.00\n"
        "  order-1: submitted, total 19.90"
    ) in out
    assert "Cached read: order-1 (submitted) served from Redis." in out


def test_ecommerce_demo_falls_back_to_mongodb_when_redis_is_down() -> None:
    out = run_example("examples.ecommerce", REDIS_URL="redis://127.0.0.1:1/0")
    assert "aggregate order-1: submitted, version 2" in out
    assert "Cached read: Redis unavailable, order-1 read from MongoDB instead." in out


@pytest.mark.redis
def test_benchmark_quick_run_measures_every_workload(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    document = json.loads(output.read_text())
    keys = [workload["key"] for workload in document["workloads"]]
    assert keys[:7] == ["persist", "load_ids", "page", "stream", "es_apply", "es_load", "cached"]
    assert keys[7:] == [
        "es_stream10",
        "es_stream100",
        "es_stream1000",
        "es_snapshot",
        "update",
        "es_append",
    ]
    for workload in document["workloads"]:
        assert {"raw", "raw+validate", "cqrs-mongo"} <= set(workload["results"])
    assert "[es_load] load 100 event-sourced aggregates" in completed.stdout
    assert set(document["memory"]) == {"raw", "raw+validate", "cqrs-mongo", "beanie"}
