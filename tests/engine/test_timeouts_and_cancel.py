"""Timeouts at all four levels (seed 003 §12) and cancellation that leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from worldtree.backends.base import RunContext
from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.loader import load_pipeline_text
from worldtree.engine.local import local_driver
from worldtree.model.states import RunState
from worldtree.testing import RecordingListener, run_pipeline_text


@pytest.mark.parametrize(("level", "yaml", "message"), [
    ("step", "timeout: 60\nstages: [{name: s, jobs: [{name: j, steps: [{command: sleep 5, timeout: 0.4}]}]}]",
     "step timeout after 0.4 seconds"),
    ("job", "stages: [{name: s, jobs: [{name: j, timeout: 0.4, steps: [{command: sleep 5}]}]}]",
     "job timeout after 0.4 seconds"),
    ("stage", "stages: [{name: s, timeout: 0.4, jobs: [{name: j, steps: [{command: sleep 5}]}]}]",
     "stage timeout after 0.4 seconds"),
    ("pipeline", "timeout: 0.4\nstages: [{name: s, jobs: [{name: j, steps: [{command: sleep 5}]}]}]",
     "pipeline timeout after 0.4 seconds"),
])
def test_timeout_at_each_level(level: str, yaml: str, message: str) -> None:
    started = time.monotonic()
    state, rec = run_pipeline_text(yaml)
    assert time.monotonic() - started < 3
    assert state == RunState.TIMED_OUT
    ev = rec.last("s/j/step-1")
    assert ev.state == "timed_out"
    assert ev.error == message


def test_job_timeout_spans_its_steps() -> None:
    # each step is short, but together they exceed the job's timeout
    state, rec = run_pipeline_text("""
stages:
  - name: s
    jobs:
      - name: j
        timeout: 0.6
        steps:
          - command: sleep 0.4
          - command: sleep 0.4
          - command: echo never
""")
    assert state == RunState.TIMED_OUT
    assert rec.last("s/j/step-2").error == "job timeout after 0.6 seconds"
    assert rec.final()["s/j/step-3"] == "skipped"


def test_seed_example_messages_with_inheritance() -> None:
    # the step inherits the job's 1 s: the job is the level that fires (it was declared there)
    _, rec = run_pipeline_text("""
timeout: 3600
stages:
  - name: build
    timeout: 1800
    jobs:
      - name: build job
        timeout: 0.5
        steps:
          - {name: build step, command: sleep 5}
""")
    assert rec.last("build/build-job/build-step").error == "job timeout after 0.5 seconds"


def _pids_with_marker(marker: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != os.getpid()]


def test_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    marker = f"wt-tree-{os.getpid()}-{time.monotonic_ns()}"
    state, _ = run_pipeline_text(f"""
jobs:
  j:
    steps:
      - run: (sh -c 'sleep 30; echo {marker}' &) ; sh -c 'sleep 31; echo {marker}'
        timeout: 0.5
""")
    assert state == RunState.TIMED_OUT
    time.sleep(0.2)
    assert _pids_with_marker(marker) == []


def test_engine_cancel_stops_running_and_pending() -> None:
    text = """
jobs:
  a: {steps: [{run: sleep 30}]}
  b: {steps: [{run: sleep 30}]}
  c: {needs: [a], steps: [{run: echo never}]}
"""
    graph = compile_pipeline(load_pipeline_text(text).spec)
    rec = RecordingListener()
    engine = local_driver(RunContext("r", 1, "/tmp", graph, grace_seconds=1), rec, concurrency=4)

    async def main() -> RunState:
        asyncio.get_running_loop().call_later(0.3, engine.cancel, "cancelled by test")
        return await engine.run()

    started = time.monotonic()
    assert asyncio.run(main()) == RunState.CANCELLED
    assert time.monotonic() - started < 3
    final = rec.final()
    assert final == {"a/step-1": "cancelled", "b/step-1": "cancelled", "c/step-1": "cancelled"}
    assert rec.last("a/step-1").error == "cancelled by test"


def test_sigterm_to_worldtree_run_leaves_no_orphans(tmp_path: Path) -> None:
    """The CLI's signal handling: SIGTERM -> running steps' process groups are killed."""
    marker = f"wt-orphan-{os.getpid()}-{time.monotonic_ns()}"
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(textwrap.dedent(f"""
        jobs:
          a:
            steps:
              - run: "trap '' TERM; sh -c 'sleep 40; echo {marker}' & sleep 41; echo {marker}"
          b:
            steps:
              - run: "sleep 42; echo {marker}"
    """))
    env = {**os.environ, "WORLDTREE_STORE": f"sqlite:///{tmp_path}/s.db"}
    env.pop("WORLDTREE_RUN_ID", None)
    proc = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "run", str(pipeline)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(_pids_with_marker(marker)) < 3:
        time.sleep(0.1)
    assert len(_pids_with_marker(marker)) >= 3
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1, out
    assert "cancelled" in out
    time.sleep(0.3)
    assert _pids_with_marker(marker) == []
