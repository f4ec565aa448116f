"""``cqrs-mongo projections status|rebuild`` and ``cqrs-mongo parked list|replay``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from cqrs_mongo.cli.main import (
    Session,
    app_option,
    cli,
    json_option,
    open_app,
    pass_session,
    uri_option,
)
from cqrs_mongo.cli.output import (
    EXIT_OK,
    EXIT_UNHEALTHY,
    console,
    duration,
    emit_json,
    say,
    table,
)
from cqrs_mongo.projections import ProjectionStatus

STATUS_COLUMNS = (
    "projection",
    "state",
    "lag (events)",
    "lag",
    "checkpoint age",
    "parked",
    "lease",
    "last error",
)

# On a terminal the bar redraws itself; elsewhere (a log, a pipe) one line this often at most.
PLAIN_PROGRESS_EVERY_SECONDS = 10.0
POLL_SECONDS = 0.2


@cli.group()
def projections() -> None:
    """The application's projections."""


@projections.command("status")
@app_option()
@uri_option
@json_option
@pass_session
def projections_status(session: Session, app_spec: str, uri: str | None, as_json: bool) -> None:
    """One row per projection: state, lag, checkpoint age, parked events, lease, last error.

    Exits 3 when a projection has failed.
    """

    async def work() -> int:
        async with open_app(app_spec, uri) as opened:
            statuses: list[ProjectionStatus] = [
                await opened.app.worker(opened.client, projection).status()
                for projection in opened.app.projections
            ]
        if as_json:
            emit_json([dataclasses.asdict(status) for status in statuses])
        else:
            console().print(table(None, STATUS_COLUMNS, [_status_row(s) for s in statuses]))
        return EXIT_UNHEALTHY if any(s.state == "failed" for s in statuses) else EXIT_OK

    session.run(work)


def _status_row(status: ProjectionStatus) -> list[Any]:
    lease = status.lease_owner
    expires = status.lease_expires_at
    if lease is not None and expires is not None:
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        ends = "expired" if expires <= datetime.now(UTC) else f"until {expires:%H:%M:%S}"
        lease = f"{lease} ({ends})"
    return [
        status.name,
        status.state,
        status.lag_events,
        duration(status.lag_seconds),
        duration(status.checkpoint_age_seconds),
        status.parked,
        lease,
        _shorten(status.last_error),
    ]


def _shorten(text: str | None, limit: int = 120) -> str | None:
    # The table keeps to a line or two; --json has the whole message.
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 3] + "..."


@projections.command("rebuild")
@click.argument("name")
@app_option()
@uri_option
@pass_session
def projections_rebuild(session: Session, name: str, app_spec: str, uri: str | None) -> None:
    """Replay every event into a fresh collection, then switch readers to it at the end."""

    async def work() -> int:
        async with open_app(app_spec, uri) as opened:
            worker = opened.app.worker(opened.client, opened.app.projection(name))
            try:
                await rebuild_with_progress(worker)
            finally:
                await let_go(worker)
        return EXIT_OK

    session.run(work)


async def rebuild_with_progress(worker: Any) -> str:
    """Run ``worker.rebuild()`` while showing events done / total, rate and ETA.

    The total is the number of stored events of the types the projection handles, counted
    before the rebuild starts; events appended meanwhile raise it as they are applied.
    """
    types = sorted(worker.projection.handled_event_types)
    total = await worker.database[worker.events_collection].count_documents(
        {"event_type": {"$in": types}}
    )
    target = f"{worker.name}__v{await worker.store.generation(worker.name) + 1}"
    out = console()
    started = time.monotonic()
    rebuild = asyncio.ensure_future(worker.rebuild())
    if out.is_terminal:
        await _bar(out, worker, rebuild, target, total)
    else:
        await _lines(out, worker, rebuild, target, total)
    switched_to: str = rebuild.result()
    done = await _applied(worker, switched_to)
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    say(
        f"Rebuilt {worker.name} into {switched_to}: {done} events in {elapsed:.1f} s "
        f"({rate:.0f}/s); readers switched."
    )
    return switched_to


async def _bar(
    out: Any, worker: Any, rebuild: asyncio.Future[str], target: str, total: int
) -> None:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=out, transient=False) as progress:
        task = progress.add_task(f"rebuild {worker.name}", total=total, rate="0")
        while not rebuild.done():
            await asyncio.wait({rebuild}, timeout=POLL_SECONDS)
            done = await _applied(worker, target)
            speed = progress.tasks[0].speed or 0.0
            progress.update(task, completed=done, total=max(total, done), rate=f"{speed:.0f}")


async def _lines(
    out: Any, worker: Any, rebuild: asyncio.Future[str], target: str, total: int
) -> None:
    say(f"Rebuilding {worker.name} into {target}: {total} events to replay.")
    last = time.monotonic()
    while not rebuild.done():
        await asyncio.wait({rebuild}, timeout=POLL_SECONDS)
        if not rebuild.done() and time.monotonic() - last >= PLAIN_PROGRESS_EVERY_SECONDS:
            say(f"... {await _applied(worker, target)}/{total} events")
            last = time.monotonic()


async def let_go(worker: Any) -> None:
    """Give up the lease (and session) a one-off command's worker took, so the projection's
    own worker carries on at once instead of waiting for the lease to run out."""
    with contextlib.suppress(Exception):  # the command's own outcome is what gets reported
        await worker.lease.release()
    with contextlib.suppress(Exception):
        await worker.lease.close()
    await worker.feed.close()


async def _applied(worker: Any, collection: str) -> int:
    # The checkpoint counts the events each batch applied, in the batch's own transaction.
    found = await worker.store.checkpoints.find_one({"_id": collection}, {"events": 1})
    return int(found.get("events", 0)) if found else 0


# --- parked events --------------------------------------------------------------------------


@cli.group()
def parked() -> None:
    """Events a projection set aside after its handler kept failing."""


@parked.command("list")
@click.argument("name")
@app_option()
@uri_option
@json_option
@pass_session
def parked_list(session: Session, name: str, app_spec: str, uri: str | None, as_json: bool) -> None:
    """The events parked for projection NAME."""

    async def work() -> int:
        async with open_app(app_spec, uri) as opened:
            worker = opened.app.worker(opened.client, opened.app.projection(name))
            found = await worker.parked()
        if as_json:
            emit_json([dataclasses.asdict(event) for event in found])
            return EXIT_OK
        columns = ["stream", "version", "type", "attempts", "parked at", "error"]
        rows = [
            [
                event.stream_id,
                event.version,
                event.event_type,
                event.attempts,
                event.parked_at,
                event.error or f"held behind version {event.held_behind}",
            ]
            for event in found
        ]
        console().print(table(f"{len(found)} parked event(s) of {name}", columns, rows))
        return EXIT_OK

    session.run(work)


@parked.command("replay")
@click.argument("name")
@click.option("--stream", "stream_id", default=None, help="Only this stream's parked events.")
@app_option()
@uri_option
@json_option
@pass_session
def parked_replay(
    session: Session,
    name: str,
    stream_id: str | None,
    app_spec: str,
    uri: str | None,
    as_json: bool,
) -> None:
    """Apply projection NAME's parked events again, each stream in order.

    Exits 3 when some events are still parked afterwards (they failed again).
    """

    async def work() -> int:
        async with open_app(app_spec, uri) as opened:
            worker = opened.app.worker(opened.client, opened.app.projection(name))
            try:
                applied = await worker.replay_parked(stream_id)
            finally:
                await let_go(worker)
            left = len(await worker.parked(stream_id))
        if as_json:
            emit_json({"projection": name, "applied": applied, "still_parked": left})
        else:
            say(f"Replayed {applied} parked event(s) of {name}; {left} still parked.")
        return EXIT_UNHEALTHY if left else EXIT_OK

    session.run(work)
