"""Issue 7 §6: a background child that writes fast must not hang the run (it did: 22 GB, forever).

Each run happens in a child Python, killed after ``HARD_LIMIT`` seconds, so a regression fails
instead of hanging the suite; ``os.wait4`` gives that child's peak memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from process_helpers import alive, read_pid

HARD_LIMIT = 40.0
_RUNNER = """
import sys
from worldtree.testing import run_pipeline_text
state, rec = run_pipeline_text(sys.stdin.read(), workdir=sys.argv[1])
print(state.name, len(rec.lines), flush=True)
"""


def run_isolated(pipeline: str, workdir: Path, sigterm_after: float | None = None) -> tuple[str, float, int]:
    """(stdout, wall seconds, peak RSS in MB) of one in-process run in a child Python."""
    proc = subprocess.Popen([sys.executable, "-c", _RUNNER, str(workdir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    start = time.monotonic()
    proc.stdin.write(pipeline)
    proc.stdin.close()
    if sigterm_after is not None:
        time.sleep(sigterm_after)
        proc.send_signal(signal.SIGTERM)
    killer = subprocess.Popen(["sh", "-c", f"sleep {HARD_LIMIT}; kill -9 {proc.pid}"])
    try:
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        killer.kill()
        killer.wait()
    return out.strip(), time.monotonic() - start, usage.ru_maxrss // 1024


def test_a_background_writer_is_killed_when_its_step_ends(tmp_path: Path) -> None:
    out, wall, rss = run_isolated("""
jobs:
  j: {steps: [{run: "(yes & echo $! > bg.pid); echo started", timeout: 3}]}
""", tmp_path)
    assert out.startswith("SUCCEEDED"), (out, wall)
    assert wall < 15, wall
    assert rss < 400, f"peak RSS {rss} MB: output is not bounded"
    assert not alive(read_pid(str(tmp_path / "bg.pid")))


def test_a_flooding_step_times_out_on_time(tmp_path: Path) -> None:
    out, wall, rss = run_isolated("""
jobs:
  j: {steps: [{run: "(yes & echo $! > bg.pid); sleep 30", timeout: 2}]}
""", tmp_path)
    assert out.startswith("TIMED_OUT"), (out, wall)
    assert wall < 15, wall
    assert rss < 400, f"peak RSS {rss} MB"
    assert not alive(read_pid(str(tmp_path / "bg.pid")))


def test_sigterm_ends_a_run_whose_step_floods(tmp_path: Path) -> None:
    """The flooding step's main process exits at once; SIGTERM must still reach the other job."""
    out, wall, _ = run_isolated("""
jobs:
  flood: {steps: [{run: "(yes & echo $! > bg.pid); echo started"}]}
  slow: {steps: [{run: "sleep 30"}]}
""", tmp_path, sigterm_after=2.0)
    assert out.startswith("CANCELLED"), (out, wall)
    assert wall < 15, wall
    assert not alive(read_pid(str(tmp_path / "bg.pid")))
