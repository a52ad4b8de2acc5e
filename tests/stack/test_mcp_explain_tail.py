"""jobs.explain quotes the END of a long job log (where the failure is), with a bounded number of reads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from worldtree.app.local_runs import LocalRuns
from worldtree.mcp.pipelines import EXPLAIN_TAIL, explain_run
from worldtree.store import open_store

DOC = """name: long
jobs:
  noisy:
    steps:
      - name: run
        command: "seq 1 {lines}; echo the-real-error; exit 3"
  other:
    steps:
      - name: run
        command: "seq 1 300"
"""


class Counting:
    """The LocalRuns of a test, counting log reads."""

    def __init__(self, runs: LocalRuns) -> None:
        self.runs, self.reads = runs, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runs, name)

    def logs(self, run_id: str, **kwargs: Any) -> dict[str, Any]:
        self.reads += 1
        return self.runs.logs(run_id, **kwargs)


@pytest.mark.slow
def test_the_tail_of_a_long_log_is_its_end(tmp_path: Path) -> None:
    """The tail was the last of the first 20 pages read from the start: for a job that failed at line
    25,001 it quoted lines 19,981-20,000."""
    runs = LocalRuns(open_store(f"sqlite:///{tmp_path / 's.db'}"), tmp_path / "data")
    try:
        run_id = runs.submit(DOC.format(lines=25000))["id"]
        deadline = time.monotonic() + 120
        while runs.get_run(run_id)["state"] not in ("failed", "succeeded") and time.monotonic() < deadline:
            time.sleep(0.2)
        counting = Counting(runs)
        found = explain_run(counting, run_id, "noisy")  # type: ignore[arg-type]
    finally:
        runs.close()
    (job,) = found["jobs"]
    assert job["log_tail"] == [str(n) for n in range(25000 - EXPLAIN_TAIL + 2, 25001)] + ["the-real-error"]
    assert counting.reads < 80  # one page, about 2 x 16 one-line probes, a window or two
