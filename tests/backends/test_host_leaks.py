"""200 steps in a row leave no descriptor and no process behind (close() and the watchdog)."""

from __future__ import annotations

import os
from pathlib import Path

from process_helpers import alive, fd_count, wait_for

from worldtree.model.states import RunState
from worldtree.testing import run_pipeline_text


def _children() -> list[int]:
    """Processes whose parent is this one, zombies included (an unreaped child is a leak too)."""
    me = str(os.getpid())
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:
            found.append(int(name))
    return found


def test_200_sequential_steps_leak_no_fd_and_no_process(tmp_path: Path) -> None:
    steps = []
    for i in range(200):
        if i % 40 == 0:  # a server left for later steps: it must end with the run
            steps.append(f'      - run: "sleep 60 >/dev/null 2>&1 & echo $! > bg{i}.pid"')
        elif i % 40 == 1:  # one that keeps the step's pipe: it must end with its step
            steps.append('      - run: "sleep 60 & echo started"')
        else:
            steps.append("      - run: \"true\"" if i % 2 else "      - run: echo $WORLDTREE_NODE")
    text = "jobs:\n  j:\n    steps:\n" + "\n".join(steps) + "\n"
    before_fds, before_children = fd_count(), set(_children())
    state, rec = run_pipeline_text(text, workdir=str(tmp_path), concurrency=1)
    assert state == RunState.SUCCEEDED, [(e.node, e.state, e.error) for e in rec.events if e.error]
    assert len(rec.output()) >= 100
    assert fd_count() == before_fds, sorted(os.listdir("/proc/self/fd"))
    assert set(_children()) - before_children == set()
    for pid_file in tmp_path.glob("bg*.pid"):  # SIGKILL is sent at close; dying takes the kernel a moment
        pid = int(pid_file.read_text())
        assert wait_for(lambda pid=pid: not alive(pid), 3.0), pid_file.name
