"""The README's trace example runs as written and shows command -> append -> projection."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"


def trace_example() -> str:
    block = re.search(
        r"<!-- otel-trace:begin -->\s*```python\n(.*?)```\s*<!-- otel-trace:end -->",
        README.read_text(),
        re.S,
    )
    assert block is not None, "README has no trace example"
    return block.group(1)


def test_the_projection_span_links_to_the_transaction_that_appended_the_event() -> None:
    done = subprocess.run(
        [sys.executable, "-c", trace_example()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    spans = {}
    for line in done.stdout.splitlines():
        name, span_id, parent, links = line.rsplit(maxsplit=3)
        spans.setdefault(name.strip(), []).append(
            (span_id, parent.removeprefix("parent="), links.removeprefix("links="))
        )
    [(apply_id, apply_parent, _)] = spans["apply Order"]
    assert apply_parent == "-"
    append = [s for s in spans["transaction default"] if s[1] == apply_id]
    assert len(append) == 1
    append_id = append[0][0]
    assert any(parent == append_id for _, parent, _ in spans["insert events"])
    # One event is the unit's only operation: sent alone, without a transaction to commit.
    assert not any(parent == append_id for _, parent, _ in spans["commitTransaction admin"])
    [(_, _, batch_links)] = spans["process order_totals"]
    assert batch_links == append_id
