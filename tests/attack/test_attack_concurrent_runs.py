"""Several runs writing to one store at once are a busy store, not a broken one: all must succeed.

Found by attack (issue 7): on the default SQLite store, 4 or 6 runs started together in one
directory, each printing 300,000 lines, end 1 or 2 of them as ``error`` ("cannot write run … to the
store for 5 s … (a write has not returned)"). A batch waiting for SQLite's write lock behind the
other writers counts as a failing store once it waited ``FAULT_AFTER`` (5 s); SQLite's busy
handler is not fair, so under load one writer can wait that long while the store works fine.
PostgreSQL (row locks, queued fairly) kept all six runs green.
"""

from __future__ import annotations

import json

import pytest
from attack_helpers import Cli

RUNS = 6

PIPELINE = """\
name: busy
stages:
  - name: s
    jobs:
      - name: a
        steps:
          - command: seq 1 100000
      - name: b
        steps:
          - command: seq 1 100000
"""


@pytest.mark.timeout(300)
def test_concurrent_runs_on_one_store_all_succeed(cli: Cli) -> None:
    """Found by attack: a batch queued behind other writers for SQLite's lock counted as a broken
    store after 5 s. Now a write in flight gets STALL_AFTER, and output backpressure keeps batches small."""
    cli.cwd.joinpath("p.yaml").write_text(PIPELINE)
    procs = [cli.popen("run", "p.yaml", out=cli.cwd / f"run{i}.out") for i in range(RUNS)]
    codes = [proc.wait(timeout=240) for proc in procs]
    runs = json.loads(cli("runs", "--json").stdout)
    states = sorted(r["state"] for r in runs)
    tails = [(cli.cwd / f"run{i}.out").read_text()[-300:] for i, code in enumerate(codes) if code]
    assert states == ["succeeded"] * RUNS, (states, tails)
    assert codes == [0] * RUNS, tails
    for r in runs:
        assert len(cli("logs", r["run_id"]).stdout.splitlines()) == 200_000
