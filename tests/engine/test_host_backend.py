"""The host backend on both of its process paths: posix_spawn + pidfd, and asyncio's fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from worldtree.backends import host
from worldtree.model.states import RunState
from worldtree.testing import run_pipeline_text


@pytest.fixture(params=["spawn", "asyncio"])
def process_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "spawn" and not host._USE_SPAWN:
        pytest.skip("posix_spawn + pidfd not available on this kernel")
    monkeypatch.setattr(host, "_USE_SPAWN", request.param == "spawn")
    return str(request.param)


def test_output_lines_streams_exit_code_and_workdir(process_path: str, tmp_path: Path) -> None:
    state, rec = run_pipeline_text("""
jobs:
  j:
    steps:
      - {name: out, run: "printf 'a\\nb'; sleep 0.1; printf 'c\\n'; echo err >&2; pwd", workdir: sub}
      - {name: big, run: "head -c 3000000 /dev/zero | tr '\\\\0' x; echo; echo tail"}
      - {name: code, run: exit 42}
""", workdir=str(tmp_path))
    assert state == RunState.FAILED, [(e.node, e.state, e.error) for e in rec.events]
    out = [(line.stream, line.line) for line in rec.lines if line.node == "j/out"]
    assert ("stdout", "a") in out and ("stdout", "bc") in out  # a line split across reads stays whole
    assert ("stderr", "err") in out
    assert ("stdout", f"{tmp_path}/sub") in out
    big = rec.output("j/big")
    assert sum(len(x) for x in big[:-1]) == 3_000_000 and big[-1] == "tail"
    assert max(len(x) for x in big) <= 1 << 20
    assert rec.last("j/code").exit_code == 42


def test_timeout_kills_on_both_paths(process_path: str) -> None:
    state, rec = run_pipeline_text("jobs:\n  j: {steps: [{run: 'sleep 20', timeout: 0.3}]}")
    assert state == RunState.TIMED_OUT
    assert rec.last("j/step-1").error == "step timeout after 0.3 seconds"


def test_missing_shell_is_an_error_not_a_failure(process_path: str) -> None:
    state, rec = run_pipeline_text("jobs:\n  j: {steps: [{run: 'true', shell: /no/such/shell}]}")
    assert state == RunState.FAILED
    ev = rec.last("j/step-1")
    assert ev.reason == "error" and "/no/such/shell" in (ev.error or "")


def test_background_process_holding_the_pipe_does_not_hang_the_step(process_path: str) -> None:
    state, _ = run_pipeline_text("jobs:\n  j: {steps: [{run: 'sleep 30 & echo started', timeout: 10}]}")
    assert state == RunState.SUCCEEDED


def test_direct_path_in_a_run_finds_programs_and_reports_missing_ones(tmp_path: Path) -> None:
    state, rec = run_pipeline_text("""
jobs:
  j:
    environment: {PATH: "/nonexistent:/usr/bin:/bin"}
    steps:
      - {name: direct, run: "ls -d /"}
      - {name: missing, run: "no-such-program-xyz --flag", allow_failure: true}
      - {name: fails, run: "false"}
""", workdir=str(tmp_path))
    assert state == RunState.FAILED
    assert rec.output("j/direct") == ["/"]
    assert rec.last("j/missing").exit_code == 127
    assert any("not found" in line for line in rec.output("j/missing"))
    assert rec.last("j/fails").exit_code == 1


def test_a_workdir_removed_by_a_step_is_made_again(process_path: str, tmp_path: Path) -> None:
    state, rec = run_pipeline_text("""
jobs:
  j:
    steps:
      - {name: one, run: "touch here", workdir: w}
      - {name: wipe, run: "rm -rf w"}
      - {name: again, run: "ls", workdir: w}
""", workdir=str(tmp_path))
    assert state == RunState.SUCCEEDED, [(e.node, e.state, e.error) for e in rec.events]
