"""The benchmark's arithmetic and verdicts: what its table tells a reader must be right."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# bench/ lives at the repository root, outside the installed package and pytest's paths.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import report
from bench.measure import Series, percentile
from bench.run import parse_args


def summary(median_ms: float, cpu_ms: float, commands: int) -> dict[str, float]:
    return {
        "iterations": 10,
        "median_ms": median_ms,
        "p95_ms": median_ms * 2,
        "cpu_ms": cpu_ms,
        "commands": commands,
        "commands_min": commands,
        "commands_max": commands,
    }


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 95.0
    assert percentile(values, 50) == 50.0
    assert percentile([3.0], 95) == 3.0


def test_series_summary_reports_milliseconds_and_command_spread() -> None:
    series = Series(wall=[0.001, 0.002, 0.003], cpu=[0.001, 0.001, 0.004], commands=[1, 1, 2])
    result = series.summary()
    assert result["median_ms"] == pytest.approx(2.0)
    assert result["cpu_ms"] == pytest.approx(2.0)
    assert (result["commands_min"], result["commands_max"]) == (1, 2)


def test_targets_pass_within_twenty_percent_and_equal_commands() -> None:
    rows = report.with_ratios(
        {
            "raw": summary(10.0, 1.0, 2),
            "raw+validate": summary(11.0, 2.0, 2),
            "cqrs-mongo": summary(11.9, 2.3, 2),
        }
    )
    assert report.targets(rows) == {"commands": True, "cpu": True, "wall": True}
    assert report.verdict(report.targets(rows)) == "ok"


def test_each_missed_target_is_named_in_the_table() -> None:
    rows = report.with_ratios(
        {
            "raw": summary(10.0, 1.0, 1),
            "raw+validate": summary(10.0, 1.0, 1),
            "cqrs-mongo": summary(12.5, 1.3, 2),
        }
    )
    assert report.verdict(report.targets(rows)) == "MISS commands,cpu,wall"
    document = {
        "machine": {
            "cpu": "cpu",
            "cores": 2,
            "python": "3.11",
            "pymongo": "4",
            "pydantic": "2",
            "beanie": "2",
            "server": "s",
        },
        "settings": {
            "mode": "quick",
            "warmup": 1,
            "iterations": 5,
            "stream_iterations": 3,
            "total_rows": 10,
        },
        "workloads": [{"key": "persist", "title": "t", "note": "", "results": rows}],
        "memory": {"raw": {"10": 2**20}},
    }
    text = report.table(document)
    assert "MISS commands,cpu,wall" in text
    assert "1.25" in text  # the wall ratio to raw
    assert text.splitlines()[-1].split() == ["raw", "1.00"]  # 1 MiB of peak memory


def test_quick_mode_is_small_and_writes_its_own_file() -> None:
    settings = parse_args(["--quick"])
    assert settings.iterations < 10
    assert settings.output.name == "quick.json"
    assert parse_args(["--iterations", "7"]).iterations == 7


def test_unknown_workload_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--only", "nope"])
