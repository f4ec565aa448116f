"""scripts/test.sh on a machine without Redis (issue 10.6): everything else runs and the Redis
tests are reported as not run; under CI (CI=true) missing Redis is a failure.

The script is pointed at a port where nothing listens and at a server binary that does not
exist; it reuses this checkout's .venv (TEST_SH_SKIP_INSTALL=1) and runs a small selection.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_script(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    environment.pop("CI", None)
    environment.update(
        TEST_SH_SKIP_INSTALL="1",
        TEST_SH_REDIS_PORT="1",
        TEST_SH_REDIS_SERVER="no-such-redis-server",
        **env,
    )
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "test.sh"), *args],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=ROOT,
        env=environment,
        check=False,
    )


def collected(*paths: str) -> int:
    """How many tests pytest collects from ``paths`` (so the expectation follows the suite)."""
    listing = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "--collect-only", "-q", *paths],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=True,
    )
    return sum(1 for line in listing.stdout.splitlines() if "::" in line)


def test_without_redis_everything_else_runs_and_the_redis_tests_are_reported_not_run() -> None:
    domain_tests = collected("-p", "no:cacheprovider", "tests/unit/domain")
    done = run_script(
        "-q", "-p", "no:cacheprovider", "tests/unit/domain", "tests/integration/test_cache_redis.py"
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert output.count("NOT RUN: 9 Redis tests") == 2, output
    assert "9 deselected" in output, output
    assert f"{domain_tests} passed" in output, output
    assert "failed" not in output, output


def test_under_ci_missing_redis_is_a_failure() -> None:
    done = run_script("-q", "tests/unit/domain", CI="true")
    assert done.returncode == 1
    assert "CI must run the Redis tests" in done.stderr
    assert "== pytest" not in done.stdout
