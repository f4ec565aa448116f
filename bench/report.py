"""Targets, the printed table and the JSON document of one benchmark run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RAW, RAW_VALIDATE, CQRS = "raw", "raw+validate", "cqrs-mongo"
WALL_TARGET = 1.2
CPU_TARGET = 1.2


def with_ratios(results: Mapping[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Each implementation's summary plus its wall ratio to raw and CPU ratio to raw+validate."""
    raw, validate = results.get(RAW), results.get(RAW_VALIDATE)
    out: dict[str, dict[str, Any]] = {}
    for name, summary in results.items():
        row: dict[str, Any] = dict(summary)
        row["wall_vs_raw"] = summary["median_ms"] / raw["median_ms"] if raw else None
        row["cpu_vs_raw_validate"] = (
            summary["cpu_ms"] / validate["cpu_ms"] if validate and validate["cpu_ms"] else None
        )
        out[name] = row
    return out


def targets(
    rows: Mapping[str, Mapping[str, Any]], name: str = CQRS, wall_target: float = WALL_TARGET
) -> dict[str, bool] | None:
    """Whether ``name`` meets the three targets against the raw rows (None: not applicable)."""
    if name not in rows or RAW not in rows:
        return None
    row, raw = rows[name], rows[RAW]
    return {
        "commands": row["commands_max"] <= raw["commands_min"],
        "cpu": row["cpu_vs_raw_validate"] is not None and row["cpu_vs_raw_validate"] <= CPU_TARGET,
        "wall": row["wall_vs_raw"] is not None and row["wall_vs_raw"] <= wall_target,
    }


def verdict(met: Mapping[str, bool] | None) -> str:
    if met is None:
        return ""
    missed = [name for name, ok in met.items() if not ok]
    return "ok" if not missed else "MISS " + ",".join(missed)


HEADER = (
    f"{'implementation':<26}{'median ms':>10}{'p95 ms':>9}{'x raw':>7}"
    f"{'cmds/op':>9}{'CPU ms/op':>11}{'x raw+val':>10}  targets"
)


def table(document: Mapping[str, Any]) -> str:
    """The whole run as plain text: machine, one block per workload, then memory."""
    lines = [_machine_line(document["machine"]), _settings_line(document["settings"]), ""]
    for workload in document["workloads"]:
        lines.append(f"[{workload['key']}] {workload['title']}")
        lines.append(HEADER)
        wall_target = workload.get("wall_target", WALL_TARGET)
        for name, row in workload["results"].items():
            met = targets(workload["results"], name, wall_target)
            mark = verdict(met) if name.startswith(CQRS) else ""
            lines.append(_row(name, row, mark))
        if workload.get("note"):
            lines.append(f"  note: {workload['note']}")
        if wall_target != WALL_TARGET:
            lines.append(f"  target: wall <= {wall_target}x raw for this workload")
        lines.append("")
    if document.get("memory"):
        lines.append("[memory] stream(): peak traced client memory while streaming (MiB)")
        sizes = list(next(iter(document["memory"].values())))
        lines.append(f"{'implementation':<26}" + "".join(f"{s + ' rows':>14}" for s in sizes))
        for name, peaks in document["memory"].items():
            cells = "".join(f"{peaks[s] / 2**20:>14.2f}" for s in sizes)
            lines.append(f"{name:<26}{cells}")
        lines.append("")
    return "\n".join(lines)


def _row(name: str, row: Mapping[str, Any], mark: str) -> str:
    commands = f"{row['commands']:g}"
    if row["commands_min"] != row["commands_max"]:
        commands += "*"
    return (
        f"{name:<26}{row['median_ms']:>10.3f}{row['p95_ms']:>9.3f}"
        f"{_ratio(row['wall_vs_raw']):>7}{commands:>9}{row['cpu_ms']:>11.3f}"
        f"{_ratio(row['cpu_vs_raw_validate']):>10}  {mark}"
    ).rstrip()


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _machine_line(machine: Mapping[str, Any]) -> str:
    return (
        f"machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"pymongo {machine['pymongo']}, pydantic {machine['pydantic']}, "
        f"beanie {machine['beanie']}; "
        f"server: {machine['server']}"
    )


def _settings_line(settings: Mapping[str, Any]) -> str:
    return (
        f"settings: {settings['mode']}, warm-up {settings['warmup']}, iterations "
        f"{settings['iterations']} (stream: {settings['stream_iterations']}), "
        f"seeded rows {settings['total_rows']}; targets for cqrs-mongo: commands <= raw, "
        f"CPU <= {CPU_TARGET}x raw+validate, wall <= {WALL_TARGET}x raw"
    )
