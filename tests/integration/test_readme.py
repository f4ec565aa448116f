"""The README's quick start runs as written and prints what it promises."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_code() -> str:
    text = README.read_text()
    block = re.search(
        r"<!-- quickstart:begin -->\s*```python\n(.*?)```\s*<!-- quickstart:end -->", text, re.S
    )
    assert block is not None, "README has no quick-start block"
    return block.group(1)


def test_quickstart_is_short_and_runs_on_the_embedded_server() -> None:
    code = quickstart_code()
    assert len(code.splitlines()) <= 35
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "cust-1 42.50 1"
