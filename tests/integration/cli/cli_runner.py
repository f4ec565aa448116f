"""Runs the installed ``cqrs-mongo`` console script as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
SCRIPT = str(Path(sys.executable).parent / "cqrs-mongo")


@dataclass
class Cli:
    """Runs ``cqrs-mongo`` with the test app importable and the server in the environment."""

    uri: str
    database: str

    def __call__(
        self, *args: str, timeout: float = 120, **env: str
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "MONGODB_URI": self.uri,
            "CQRS_CLI_DB": self.database,
            "PYTHONPATH": str(HERE),
            "COLUMNS": "200",
            **env,
        }
        if "FORCE_COLOR" not in env:
            environment.pop("FORCE_COLOR", None)
        return subprocess.run(
            [SCRIPT, *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=HERE,
            timeout=timeout,
            check=False,
        )
