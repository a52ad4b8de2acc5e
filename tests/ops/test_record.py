"""``worldtree apply --record``: the apply is a stored run; ``logs`` shows it, ``retry`` resumes it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from worldtree.testing.stores import pg_unavailable_reason, store_url


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgres":
        reason = pg_unavailable_reason()
        if reason:
            pytest.skip(f"!!! PostgreSQL tests skipped: {reason}")
    with store_url(request.param, tmp_path) as url:
        yield url


def wt(cwd: Path, store: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_RUN_ID"}
    env["WORLDTREE_STORE"] = store
    return subprocess.run([sys.executable, "-m", "worldtree.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_failed_recorded_apply_is_resumed_by_retry(tmp_path: Path, store: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "p.yaml").write_text(
        f"name: resumable\nhosts: local\ntasks:\n"
        f"  - name: first\n    op: file.file\n    with: {{path: {root}/first, content: x}}\n"
        f"  - name: gate\n    op: command\n    with: {{run: \"test -e {root}/go\", creates: {root}/gate}}\n"
        f"  - name: last\n    op: file.file\n    with: {{path: {root}/last, content: y}}\n")
    first = wt(tmp_path, store, "apply", "p.yaml", "--record")
    assert first.returncode == 1, first.stdout + first.stderr
    run_id = next(line.split()[1] for line in first.stdout.splitlines() if line.startswith("run "))
    assert (root / "first").exists() and not (root / "last").exists()
    runs = wt(tmp_path, store, "runs")
    assert run_id in runs.stdout and "apply resumable" in runs.stdout and "failed" in runs.stdout
    logs = wt(tmp_path, store, "logs", run_id).stdout
    assert "gate   FAILED: `test -e" in logs and "last   skipped" in logs, logs
    (root / "go").touch()
    again = wt(tmp_path, store, "retry", run_id)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (root / "last").read_text() == "y"
    logs = wt(tmp_path, store, "logs", run_id).stdout
    assert "first  no change: " in logs and "last   changed" in logs, logs


def test_a_bad_playbook_is_exit_2_and_no_run(tmp_path: Path, store: str) -> None:
    (tmp_path / "p.yaml").write_text("hosts: local\ntasks:\n  - name: a\n    op: nope\n")
    proc = wt(tmp_path, store, "apply", "p.yaml", "--record")
    assert proc.returncode == 2 and proc.stderr.startswith("p.yaml:4:9: error: unknown operation 'nope'")
    assert "apply" not in wt(tmp_path, store, "runs").stdout
