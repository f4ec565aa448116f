"""A description of the machine and software the benchmark ran on."""

from __future__ import annotations

import os
import platform
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

from cqrs_mongo.testing import EmbeddedMongoServer


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe(server: str) -> dict[str, Any]:
    """CPU model, cores, OS, Python and the versions of the packages measured."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "pymongo": _version("pymongo"),
        "pydantic": _version("pydantic"),
        "beanie": _version("beanie"),
        "redis": _version("redis"),
        "cqrs-mongo": _version("cqrs-mongo"),
        "server": server,
    }


@asynccontextmanager
async def server_uri() -> AsyncIterator[tuple[str, str]]:
    """The server every benchmark measures: ``MONGODB_URI``, else the embedded server as a
    child process (so the CPU measured is the client's alone); with a description of it."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri, "MONGODB_URI"
        return
    with EmbeddedMongoServer(in_process=False) as server:
        yield server.uri, "embedded SecantusDB (secantusd-py, separate process)"
