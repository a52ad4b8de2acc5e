"""CLI-level regressions found in review."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from tests.cli.conftest import Cli


def test_retry_reruns_steps_that_the_rollback_undid(sqlite_cli: Cli) -> None:
    made, go = sqlite_cli.cwd / "made", sqlite_cli.cwd / "go"
    sqlite_cli.write("p.yaml", f"""
on_failure: rollback
jobs:
  a:
    steps: [{{run: touch {made}, rollback: rm {made}}}]
  b:
    needs: [a]
    steps: [{{run: 'test -f {go} && test -f {made}'}}]
""")
    code, lines = sqlite_cli.json_lines("run", "p.yaml")
    assert code == 1 and not made.exists()
    run_id = str(lines[0]["run_id"])
    go.touch()
    # Before: `a` was reused although its rollback had removed its work, so `b` failed again.
    code, lines = sqlite_cli.json_lines("retry", run_id)
    assert code == 0
    states = {e["node"]: e["state"] for e in lines if "state" in e and "node" in e}
    assert states == {"a/step-1": "succeeded", "b/step-1": "succeeded"}


def test_a_nested_workdir_leaves_no_created_parent_behind(sqlite_cli: Cli) -> None:
    sqlite_cli.write("p.yaml", "jobs:\n  a:\n    steps: [{run: 'true'}]\n")
    (sqlite_cli.cwd / "mine").mkdir()
    assert sqlite_cli("run", "p.yaml", "--workdir", "sub/dir").returncode == 0
    assert sqlite_cli("run", "p.yaml", "--workdir", "mine/x/y").returncode == 0
    # Before: only the innermost directory was removed and `sub`, `mine/x` stayed.
    assert not (sqlite_cli.cwd / "sub").exists()
    assert (sqlite_cli.cwd / "mine").is_dir() and not (sqlite_cli.cwd / "mine" / "x").exists()


def test_a_closed_stdout_does_not_fail_the_run(sqlite_cli: Cli) -> None:
    sqlite_cli.write("p.yaml", "jobs:\n  a:\n    steps: [{run: seq 1 20000}]\n"
                               "  b:\n    needs: [a]\n    steps: [{run: echo b}]\n")
    env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_RUN_ID"}
    env["WORLDTREE_STORE"] = sqlite_cli.store
    for extra in ([], ["--json"]):
        # `worldtree run p.yaml | head -1`: before, the run stopped with a node left "running" and exit 1.
        proc = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "run", "p.yaml", *extra],
                                cwd=sqlite_cli.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        proc.stdout.readline()
        proc.stdout.close()
        assert proc.wait(timeout=60) == 0
    runs = json.loads(sqlite_cli("runs", "--json").stdout)
    assert [r["state"] for r in runs] == ["succeeded", "succeeded"]


def test_retry_keeps_a_directory_the_user_made_where_the_workdir_was(sqlite_cli: Cli) -> None:
    go = sqlite_cli.cwd / "go"
    sqlite_cli.write("p.yaml", f"jobs:\n  a:\n    steps: [{{run: 'test -f {go}'}}]\n")
    code, lines = sqlite_cli.json_lines("run", "p.yaml", "--workdir", "wd")
    assert code == 1 and (sqlite_cli.cwd / "wd").is_dir()  # created, and kept: the run failed
    shutil.rmtree(sqlite_cli.cwd / "wd")  # the user removes it and makes their own at the same path
    (sqlite_cli.cwd / "wd").mkdir()
    (sqlite_cli.cwd / "wd" / "mine.txt").write_text("precious")
    go.touch()
    # Before: retry treated the directory as its own (the first attempt created one there) and deleted it.
    assert sqlite_cli("retry", str(lines[0]["run_id"])).returncode == 0
    assert (sqlite_cli.cwd / "wd" / "mine.txt").read_text() == "precious"


def test_failed_run_keeps_its_workdir_until_a_retry_succeeds(sqlite_cli: Cli) -> None:
    """``build`` writes a file, ``test`` fails; the retry reuses ``build`` and must find its file."""
    go = sqlite_cli.cwd / "go"
    sqlite_cli.write("p.yaml", f"""
jobs:
  build: {{steps: [{{run: echo built > build.out}}]}}
  test: {{needs: [build], steps: [{{run: 'test -f {go} && cat build.out'}}]}}
""")
    code, lines = sqlite_cli.json_lines("run", "p.yaml", "--workdir", "wd")
    assert code == 1 and (sqlite_cli.cwd / "wd" / "build.out").is_file()
    go.touch()
    retry = sqlite_cli("retry", str(lines[0]["run_id"]))
    assert retry.returncode == 0, retry.stdout + retry.stderr
    assert "built" in retry.stdout
    assert not (sqlite_cli.cwd / "wd").exists()  # ours, and the run succeeded: removed


def test_two_runs_sharing_a_created_workdir_do_not_pull_it_from_each_other(sqlite_cli: Cli) -> None:
    sqlite_cli.write("slow.yaml", "jobs:\n  a: {steps: [{run: 'sleep 1.5; echo late > late.txt'}]}\n")
    sqlite_cli.write("fast.yaml", "jobs:\n  a: {steps: [{run: 'true'}]}\n")
    slow = sqlite_cli.popen("run", "slow.yaml", "--workdir", "shared")
    deadline = time.monotonic() + 10
    while not (sqlite_cli.cwd / "shared").is_dir() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert sqlite_cli("run", "fast.yaml", "--workdir", "shared").returncode == 0
    assert (sqlite_cli.cwd / "shared").is_dir()  # the slow run still holds it
    assert slow.wait(timeout=30) == 0
