"""Helpers to set and clear ``failCommand`` failpoints (test servers only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any


async def set_fail_command(
    client: Any,
    commands: Sequence[str],
    *,
    times: int = 1,
    error_code: int | None = None,
    error_labels: Sequence[str] | None = None,
    close_connection: bool = False,
    block_ms: int | None = None,
    write_concern_error: dict[str, Any] | None = None,
    app_name: str | None = None,
) -> None:
    """Make the next ``times`` of ``commands`` fail on the server ``client`` talks to.

    Only one of ``error_code``, ``close_connection`` and ``write_concern_error`` is usually
    given; ``block_ms`` delays the command before it runs or fails.
    """
    data: dict[str, Any] = {"failCommands": list(commands)}
    if error_code is not None:
        data["errorCode"] = error_code
    if error_labels is not None:
        data["errorLabels"] = list(error_labels)
    if close_connection:
        data["closeConnection"] = True
    if block_ms is not None:
        data["blockConnection"] = True
        data["blockTimeMS"] = block_ms
    if write_concern_error is not None:
        data["writeConcernError"] = write_concern_error
    if app_name is not None:
        data["appName"] = app_name
    await client.admin.command(
        {"configureFailPoint": "failCommand", "mode": {"times": times}, "data": data}
    )


async def clear_fail_command(client: Any) -> None:
    """Switch the ``failCommand`` failpoint off."""
    await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})


@asynccontextmanager
async def fail_command(client: Any, commands: Sequence[str], **options: Any) -> AsyncIterator[None]:
    """Set a ``failCommand`` failpoint for the block, and clear it afterwards."""
    await set_fail_command(client, commands, **options)
    try:
        yield
    finally:
        await clear_fail_command(client)
