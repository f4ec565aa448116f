"""A description of the machine and software the benchmark ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any


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
