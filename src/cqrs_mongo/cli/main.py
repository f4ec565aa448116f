"""``cqrs-mongo``: the operator CLI (doctor, indexes, projections, parked events, streams).

Every command that lists things takes ``--json``. Exit codes: 0 done, 1 could not do it (one
line on stderr says why; ``--debug`` shows the traceback), 2 bad usage, 3 done but a problem
was found (see :mod:`cqrs_mongo.cli.output`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Any

import click

from cqrs_mongo.cli.app import CqrsMongoApp, load_app
from cqrs_mongo.cli.output import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_UNHEALTHY,
    console,
    duration,
    emit_json,
    error_line,
    key_values,
    say,
    table,
)
from cqrs_mongo.mongo import MongoEventStore, MongoProjectionStore, ensure_indexes
from cqrs_mongo.mongo.diagnostics import diagnose
from cqrs_mongo.mongo.driver import get_database

STREAM_VERSION_INDEX_NAME = "stream_id_1_version_1"

# Short enough that a wrong host fails fast, long enough for a busy replica set.
DEFAULT_TIMEOUT_MS = 5000


class Session:
    """What the group's options give every command."""

    def __init__(self, debug: bool) -> None:
        self.debug = debug

    def run(self, work: Callable[[], Coroutine[Any, Any, int]]) -> None:
        """Run ``work`` in an event loop; exit with its code, or one error line and 1."""
        try:
            code = asyncio.run(work())
        except Exception as exc:
            if self.debug:
                raise
            click.echo(f"error: {error_line(exc)}", err=True)
            raise SystemExit(EXIT_ERROR) from None
        raise SystemExit(code)


def app_option(required: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--app module:attr``: the application object (see :class:`CqrsMongoApp`)."""
    return click.option(
        "--app",
        "app_spec",
        required=required,
        metavar="MODULE:ATTR",
        help="The application's CqrsMongoApp, e.g. myservice.ops:app.",
    )


def uri_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--uri``: overrides the app's URI (and ``MONGODB_URI``)."""
    return click.option("--uri", default=None, help="MongoDB connection string.")(func)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--json``: machine-readable output."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def pass_session(func: Callable[..., Any]) -> Callable[..., Any]:
    """Hand the command the :class:`Session` of the group."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = click.get_current_context().find_object(Session)
        return func(session if session is not None else Session(debug=False), *args, **kwargs)

    return wrapper


class Opened:
    """The app, its client and database for one command; closes a client it made."""

    def __init__(self, app: CqrsMongoApp, uri: str | None) -> None:
        self.app = app
        given = uri or app.uri or ""
        # A timeout in the URI is the user's; otherwise a wrong host fails within seconds.
        options: dict[str, Any] = {}
        if "serverselectiontimeoutms" not in given.lower():
            options["serverSelectionTimeoutMS"] = DEFAULT_TIMEOUT_MS
        self.client = app.connect(uri, **options)
        self.database = get_database(self.client, app.database or "admin")

    async def __aenter__(self) -> Opened:
        # Fail in one line, within the timeout, when the server cannot be reached, rather
        # than reporting every projection as unreadable.
        try:
            await self.client.admin.command("ping")
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.app.client is None:
            await self.client.close()


def open_app(app_spec: str, uri: str | None) -> Opened:
    """Load the app named ``app_spec`` and connect it.

    Raises:
        ConfigurationError: the app cannot be loaded, or there is no URI.
    """
    return Opened(load_app(app_spec), uri)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Operate a cqrs-mongo application: health, indexes, projections, parked events, streams."""
    ctx.obj = Session(debug)


# --- doctor ---------------------------------------------------------------------------------


@cli.command()
@uri_option
@app_option(required=False)
@json_option
@pass_session
def doctor(session: Session, uri: str | None, app_spec: str | None, as_json: bool) -> None:
    """What the deployment supports, and which declared indexes are missing.

    Exits 3 when transactions or change streams are unavailable or an index is missing.
    """

    async def work() -> int:
        app = load_app(app_spec) if app_spec else CqrsMongoApp(database="", uri=uri)
        async with Opened(app, uri) as opened:
            found = await diagnose(
                opened.client,
                app.database or None,
                app.handlers(),
                app.events_collection if app_spec else None,
            )
        if as_json:
            emit_json({**asdict(found), "healthy": found.healthy})
        else:
            missing = ", ".join(f"{m.collection}.{m.name}" for m in found.missing_indexes)
            out = console()
            out.print(
                key_values(
                    {
                        "server version": found.server_version,
                        "deployment": found.topology,
                        "transactions": found.transactions,
                        "change streams": found.change_streams,
                        "oplog window": duration(found.oplog_window_seconds),
                        "missing indexes": (missing or "none") if app_spec else "(no --app)",
                    }
                )
            )
            for note in found.notes:
                say(f"note: {note}")
            say("healthy" if found.healthy else "PROBLEMS FOUND")
        return EXIT_OK if found.healthy else EXIT_UNHEALTHY

    session.run(work)


# --- indexes --------------------------------------------------------------------------------


@cli.group()
def indexes() -> None:
    """Indexes the application declares."""


@indexes.command("ensure")
@app_option()
@uri_option
@json_option
@pass_session
def indexes_ensure(session: Session, app_spec: str, uri: str | None, as_json: bool) -> None:
    """Create the indexes of the registered handlers, the events and the projection stores."""

    async def work() -> int:
        async with open_app(app_spec, uri) as opened:
            created = await ensure_indexes(opened.database, opened.app.handlers())
            store = MongoEventStore(opened.database, opened.app.events_collection)
            await store.ensure_indexes()
            names = created.setdefault(opened.app.events_collection, [])
            if STREAM_VERSION_INDEX_NAME not in names:
                names.append(STREAM_VERSION_INDEX_NAME)
            if opened.app.projections:
                await MongoProjectionStore(opened.database).ensure_indexes()
        if as_json:
            emit_json(created)
        else:
            rows = [(name, ", ".join(names)) for name, names in sorted(created.items())]
            console().print(table("indexes ensured", ["collection", "indexes"], rows))
        return EXIT_OK

    session.run(work)


def main() -> None:
    """The console script's entry point."""
    from cqrs_mongo.cli import projections as _projections  # noqa: F401 - registers commands
    from cqrs_mongo.cli import streams as _streams  # noqa: F401 - registers commands

    cli(prog_name="cqrs-mongo")
