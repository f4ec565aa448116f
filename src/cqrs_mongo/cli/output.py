"""How the CLI prints: Rich tables for people, JSON for scripts, one line for an error."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from cqrs_mongo.errors import CqrsMongoError

EXIT_OK = 0
EXIT_ERROR = 1
"""Something went wrong: the command could not do its job (the message says why)."""
EXIT_UNHEALTHY = 3
"""The command worked and found a problem (doctor: no transactions; status: a failed
projection; replay: events still parked)."""


def console() -> Console:
    """The console for results (stdout); Rich turns styling off when it is not a terminal."""
    return Console(highlight=False, soft_wrap=False)


def say(text: str) -> None:
    """Print one plain line (never wrapped, never styled)."""
    click.echo(text)


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON (datetimes in ISO 8601, other values as strings)."""
    click.echo(json.dumps(data, indent=2, default=_plain, sort_keys=False))


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A Rich table of ``rows`` under ``columns``."""
    found = Table(title=title, title_justify="left")
    for column in columns:
        found.add_column(column, overflow="fold")
    for row in rows:
        found.add_row(*(cell(value) for value in row))
    return found


def key_values(pairs: Mapping[str, Any]) -> Table:
    """A two-column table of ``pairs``."""
    found = Table(show_header=False, box=None, pad_edge=False)
    found.add_column(style="bold")
    found.add_column()
    for key, value in pairs.items():
        found.add_row(key, cell(value))
    return found


def cell(value: Any) -> str:
    """``value`` as a table cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def duration(seconds: float | None) -> str:
    """``seconds`` as ``2 h 5 min``, ``4 min 10 s`` or ``12.0 s``."""
    if seconds is None:
        return "-"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{seconds:.1f} s"


def error_line(exc: BaseException) -> str:
    """One line saying what went wrong: the message's first line, capped."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not isinstance(exc, CqrsMongoError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
