"""CLI-level regressions found in review."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
    assert code == 1 and not (sqlite_cli.cwd / "wd").exists()  # created, then removed by the run
    (sqlite_cli.cwd / "wd").mkdir()
    (sqlite_cli.cwd / "wd" / "mine.txt").write_text("precious")
    go.touch()
    # Before: retry treated the directory as its own (the first attempt created one there) and deleted it.
    assert sqlite_cli("retry", str(lines[0]["run_id"])).returncode == 0
    assert (sqlite_cli.cwd / "wd" / "mine.txt").read_text() == "precious"
