"""``orphans``: a run's leftover processes are found by their environment and reaped."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from process_helpers import alive, read_pid

from worldtree.backends import orphans


def _step(run_id: str, script: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WORLDTREE_RUN_ID": run_id}
    return subprocess.Popen(["sh", "-c", script], env=env, cwd=tmp, start_new_session=True)


def test_reap_ends_every_process_of_the_run_and_only_those(tmp_path: Path) -> None:
    run_id = f"r-{os.getpid()}-{time.time_ns()}"
    # one plain step with a child that left its group, one that ignores SIGTERM
    plain = _step(run_id, "setsid sleep 60 & echo $! > escaped.pid; sleep 60", tmp_path)
    stubborn = _step(run_id, "trap '' TERM; sleep 60 & wait", tmp_path)
    other = _step(run_id + "x", "sleep 60", tmp_path)  # a run id that only starts the same
    procs = [plain, stubborn, other]
    try:
        deadline = time.monotonic() + 10
        while len(orphans.live_step_processes(run_id)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        found = orphans.live_step_processes(run_id)
        escaped = read_pid(str(tmp_path / "escaped.pid"))
        assert plain.pid in found and stubborn.pid in found and escaped in found
        assert other.pid not in found and os.getpid() not in found
        started = time.monotonic()
        assert orphans.reap(run_id, grace=0.5) == len(found)
        assert time.monotonic() - started < 5
        assert orphans.live_step_processes(run_id) == []
        assert not alive(escaped)
        assert plain.wait(2) is not None and stubborn.wait(2) is not None
        assert other.poll() is None
        assert orphans.reap(run_id, grace=0.5) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        orphans.reap(run_id, grace=0)
