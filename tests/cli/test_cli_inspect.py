"""validate / plan / graph / schema: exit codes, located errors, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli

from worldtree.model.graph import ExecutionGraph

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_validate_ok_prints_nothing(sqlite_cli: Cli) -> None:
    for example in sorted(EXAMPLES.glob("*.yaml")):
        proc = sqlite_cli("validate", str(example), "--strict")
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", ""), example


def test_validate_error_is_located_exit_2_no_traceback(sqlite_cli: Cli) -> None:
    sqlite_cli.write("bad.yaml", "jobs:\n  a:\n    needs: [nope]\n    steps: [{run: x}]\n")
    proc = sqlite_cli("validate", "bad.yaml")
    assert proc.returncode == 2
    assert proc.stderr.startswith("bad.yaml:3:13: error: job 'a' needs 'nope'")
    assert "Traceback" not in proc.stderr
    run = sqlite_cli("run", "bad.yaml")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert not (sqlite_cli.cwd / "wt.db").exists()  # nothing half-written


def test_unknown_key_warns_then_strict_fails(sqlite_cli: Cli) -> None:
    sqlite_cli.write("p.yaml", "jobs:\n  a:\n    title: x\n    steps: [{run: echo}]\n")
    warn = sqlite_cli("validate", "p.yaml")
    assert warn.returncode == 0 and "warning: unknown key `title`" in warn.stderr
    assert sqlite_cli("validate", "p.yaml", "--strict").returncode == 2


def test_plan_json_round_trips_and_shows_resolved_env(sqlite_cli: Cli) -> None:
    proc = sqlite_cli("plan", str(EXAMPLES / "parallel-stages.yaml"), "--json", "--env", "X=1")
    assert proc.returncode == 0
    graph = ExecutionGraph.model_validate_json(proc.stdout)
    assert ExecutionGraph.model_validate_json(graph.model_dump_json()) == graph
    archive = graph.by_id()["package/archive/step-1"]
    assert archive.env == {"ARTIFACT": "app.tar", "X": "1"}
    assert set(archive.needs) == {"test/integration/step-1"}
    text = sqlite_cli("plan", str(EXAMPLES / "timeout.yaml")).stdout
    assert "timeout: 2s" in text


def test_graph_formats(sqlite_cli: Cli) -> None:
    dag = str(EXAMPLES / "needs-dag.yaml")
    mermaid = sqlite_cli("graph", dag, "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart TD") and "-->" in mermaid
    dot = sqlite_cli("graph", dag, "--format", "dot").stdout
    assert '"checkout/step-1" -> "build/step-1";' in dot
    tree = sqlite_cli("graph", dag).stdout
    assert "needs: build/step-1" in tree
    assert sqlite_cli("graph", dag, "--format", "png").returncode == 2


def test_schema_is_json_schema(sqlite_cli: Cli) -> None:
    schema = json.loads(sqlite_cli("schema").stdout)
    assert schema["title"] == "worldtree pipeline"
    assert {"stages", "jobs", "on_failure"} <= set(schema["properties"])


def test_bad_usage_exit_2(sqlite_cli: Cli) -> None:
    assert sqlite_cli("run", str(EXAMPLES / "hello.yaml"), "--env", "NOEQUALS").returncode == 2
    assert sqlite_cli("runs", "show", "nope").returncode == 2
    assert sqlite_cli("retry", "nope").returncode == 2


def test_examples_behave_as_documented(sqlite_cli: Cli) -> None:
    assert sqlite_cli("run", str(EXAMPLES / "needs-dag.yaml")).returncode == 0
    timeout = sqlite_cli("run", str(EXAMPLES / "timeout.yaml"))
    assert timeout.returncode == 1 and "step timeout after 2 seconds" in timeout.stdout
    rollback = sqlite_cli("run", str(EXAMPLES / "rollback.yaml"))
    assert rollback.returncode == 1
    assert "removed config" in rollback.stdout and "removed release/" in rollback.stdout
    # created by worldtree, but the run failed: kept for `worldtree retry`, and the CLI says where
    assert (sqlite_cli.cwd / ".worldtree" / "rollback-demo").is_dir()
    assert "workdir kept for `worldtree retry" in rollback.stderr


def test_nested_run_is_refused(sqlite_cli: Cli) -> None:
    proc = sqlite_cli("run", str(EXAMPLES / "hello.yaml"), env={"WORLDTREE_RUN_ID": "outer"})
    assert proc.returncode == 2 and "nested pipelines are not allowed" in proc.stderr
