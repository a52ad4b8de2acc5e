"""A job's log (REST /jobs/{id}/logs, gRPC GetJobLog) reads that job's lines, not its whole run's."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from worldtree.app import jobs
from worldtree.app.local_runs import LocalRuns
from worldtree.store import open_store

DOC = """name: big
jobs:
  noisy:
    steps:
      - {name: run, command: "seq 1 30000"}
  small:
    steps:
      - {name: one, command: "echo one"}
      - {name: two, command: "echo two; echo three"}
"""


class Counting:
    """The run store, counting the log lines it hands out."""

    def __init__(self, store: Any) -> None:
        self.store, self.read = store, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def logs(self, run_id: str, **kwargs: Any) -> Any:
        lines = self.store.logs(run_id, **kwargs)
        self.read += len(lines)
        return lines


@pytest.mark.slow
def test_a_small_job_of_a_loud_run_reads_its_own_lines(tmp_path: Path) -> None:
    """jobs.logs and count_lines scanned the run's whole log, page by page, on every call: 2 s per
    GetJobLog of a one-line job in a run of 300,000 lines (both functions, each call)."""
    runs = LocalRuns(open_store(f"sqlite:///{tmp_path / 's.db'}"), tmp_path / "data")
    try:
        run_id = runs.submit(DOC)["id"]
        deadline = time.monotonic() + 120
        while runs.get_run(run_id)["state"] not in ("succeeded", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runs.get_run(run_id)["state"] == "succeeded"
        store = Counting(runs.store)
        _, lines = jobs.logs(store, f"{run_id}:small", offset=0, limit=1000)  # type: ignore[arg-type]
        assert [line.line for line in lines] == ["one", "two", "three"]
        assert [line.line for line in jobs.logs(store, f"{run_id}:small", offset=lines[0].seq,  # type: ignore[arg-type]
                                                limit=1)[1]] == ["two"]
        assert jobs.count_lines(store, f"{run_id}:small") == 3  # type: ignore[arg-type]
        assert store.read < 100, store.read  # it was 3 x 30,000
        assert jobs.count_lines(runs.store, f"{run_id}:noisy") == 30000
    finally:
        runs.close()
