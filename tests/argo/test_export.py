"""``worldtree argo export``: seed 002 §2's mapping, checked field by field and against Argo's
JSON Schema (strict), for every example in ``examples/``, seed 002's ``ci.yaml`` and Argo's own
examples round-tripped through the Hera models the exporter builds with."""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from argo_schema import DATA, schema_errors
from kubelet import container_env, expand
from typer.testing import CliRunner

from worldtree.argo.manifest import export_manifest
from worldtree.argo.settings import ArgoSettings
from worldtree.argo.tasks import plan_tasks
from worldtree.cli.argo import build_export
from worldtree.cli.main import app
from worldtree.errors import UsageError
from worldtree.model.graph import ExecutionGraph, Node, Scope
from worldtree.ops.config import DEFAULTS

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"


def _is_pipeline(path: Path) -> bool:
    """Pipelines have ``jobs`` or ``stages``; examples/ also holds inventories, stacks, playbooks."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return False
    return isinstance(doc, dict) and ("jobs" in doc or "stages" in doc) and "apiVersion" not in doc


EXAMPLES = sorted(p for p in (ROOT / "examples").rglob("*.y*ml") if _is_pipeline(p))
#: Examples whose jobs Argo cannot run as written, and the job export names in its refusal.
UNMAPPABLE = {"fleet.yaml": "runs over SSH", "plugin.yml": "plugin step",
              "step-service-docker-compose.yaml": "service step"}


def export(path: Path | str, **overrides: str | None) -> Any:
    return build_export(str(path), None, **overrides)


def tasks_by_name(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = manifest["spec"].get("workflowSpec", manifest["spec"])
    dag = next(t for t in spec["templates"] if "dag" in t)
    return {t["name"]: t for t in dag["dag"]["tasks"]}


def templates(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    spec = manifest["spec"].get("workflowSpec", manifest["spec"])
    return {t["name"]: t for t in spec["templates"]}


def test_the_examples_cover_what_this_file_expects() -> None:
    names = {p.name for p in EXAMPLES}
    assert set(UNMAPPABLE) | {"language.yml", "hello.yaml", "needs-dag.yaml", "parallel-stages.yaml", "rollback.yaml",
                              "timeout.yaml", "image-steps.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT / "examples")))
def test_every_example_exports_a_valid_workflow_or_is_refused_by_name(path: Path) -> None:
    if path.name in UNMAPPABLE:
        with pytest.raises(UsageError, match=UNMAPPABLE[path.name]):
            export(path)
        return
    result = export(path)
    assert result.kind == "Workflow"
    assert schema_errors(result.manifest) == []
    # JSON-clean: what `kubectl apply` reads back is what was printed
    assert json.loads(json.dumps(result.manifest)) == result.manifest


def test_seed_002_ci_yaml_maps_as_its_table_says() -> None:
    manifest = export(FIXTURES / "seed002-ci.yaml").manifest
    assert schema_errors(manifest) == []
    assert manifest["apiVersion"] == "argoproj.io/v1alpha1" and manifest["kind"] == "Workflow"
    assert manifest["spec"]["entrypoint"] == "pipeline"
    assert list(tasks_by_name(manifest)) == ["build"]
    build = templates(manifest)["build"]["container"]
    assert build["image"] == "golang:1.19"
    assert build["command"] == ["/bin/sh", "-c"]
    assert build["args"] == ["set -e\nsh -e -c 'go build ./...'\n"]
    assert build["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}}  # runner: medium, the default map


def test_full_ci_every_row_of_the_mapping() -> None:
    result = export(FIXTURES / "full-ci.yaml", namespace="ci", secret_name="ci-secrets")
    manifest = result.manifest
    assert schema_errors(manifest) == []
    assert manifest["metadata"] == {"generateName": "full-ci-", "namespace": "ci",
                                    "labels": {"app.kubernetes.io/managed-by": "worldtree"}}
    tasks, tpl = tasks_by_name(manifest), templates(manifest)
    assert list(tasks) == ["checkout", "build", "test", "notify", "deploy", "report"]
    # needs -> dependencies; a job's two steps are one task whose script runs them in order
    assert tasks["build"]["dependencies"] == ["checkout"]
    assert tpl["checkout"]["container"]["args"][0].splitlines()[:2] == [
        "set -e", "sh -e -c 'echo checked out > checkout.txt'"]
    build = tpl["build"]
    # environment -> env, secrets -> secretKeyRef, runner -> resources, timeout -> activeDeadlineSeconds
    assert build["container"]["env"] == [
        {"name": "GOFLAGS", "value": "-mod=vendor"}, {"name": "TARGET", "value": "linux"},
        {"name": "REGISTRY_TOKEN", "valueFrom": {"secretKeyRef": {"name": "ci-secrets", "key": "REGISTRY_TOKEN"}}}]
    assert build["container"]["resources"] == {"requests": {"cpu": "4", "memory": "16Gi"}}
    assert build["activeDeadlineSeconds"] == "600"
    # retry -> retryStrategy; allow_failure -> continueOn
    assert tpl["test"]["retryStrategy"] == {"limit": "3", "retryPolicy": "Always",
                                             "backoff": {"duration": "5s", "factor": "2", "cap": "300s"}}
    assert tasks["test"]["continueOn"] == {"failed": True}
    # when/if -> depends; a dependency allowed to fail counts as OK
    failure_part = tasks["notify"]["depends"].split(" && ", 1)[1]
    assert failure_part == "((build.Failed || build.Errored) || (checkout.Failed || checkout.Errored)))"
    assert "dependencies" not in tasks["notify"]
    assert "(test.Succeeded || test.Skipped || test.Daemoned || test.Failed)" in tasks["deploy"]["depends"]
    assert tasks["report"]["depends"].count("Omitted") == 2
    # a failure() handler must still be scheduled: the DAG does not fail fast
    assert tpl["pipeline"]["dag"]["failFast"] is False
    # one workspace volume, mounted by every task
    assert [c["metadata"]["name"] for c in manifest["spec"]["volumeClaimTemplates"]] == ["workspace"]
    for name in tasks:
        assert tpl[name]["container"]["volumeMounts"] == [{"name": "workspace", "mountPath": "/workspace"}]
    assert manifest["spec"]["activeDeadlineSeconds"] == 86400
    assert result.warnings == []


def test_on_schedule_gives_a_cron_workflow_with_a_list_of_schedules() -> None:
    manifest = export(FIXTURES / "nightly.yaml", timezone="Europe/Berlin", concurrency_policy="Replace").manifest
    assert schema_errors(manifest) == []
    assert manifest["kind"] == "CronWorkflow" and manifest["metadata"]["name"] == "nightly"
    spec = manifest["spec"]
    assert spec["schedules"] == ["0 3 * * *", "30 12 * * 1-5"] and "schedule" not in spec
    assert spec["timezone"] == "Europe/Berlin" and spec["concurrencyPolicy"] == "Replace"
    assert templates(manifest)["scan"]["container"]["image"] == "alpine:3.20"


def test_schedule_settings_argo_would_refuse_are_refused_here(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="IANA time zone"):
        export(FIXTURES / "nightly.yaml", timezone="Mars/Olympus")
    with pytest.raises(UsageError, match="one of Allow, Forbid, Replace"):
        export(FIXTURES / "nightly.yaml", concurrency_policy="Sometimes")
    with pytest.raises(UsageError, match="longer than 52"):
        export(FIXTURES / "nightly.yaml", name="n" * 53)
    bad = tmp_path / "bad.yaml"
    bad.write_text((FIXTURES / "nightly.yaml").read_text().replace('"0 3 * * *"', '"0 3 * *"'))
    with pytest.raises(UsageError, match="five fields"):
        export(bad)


def test_the_schema_check_can_fail() -> None:
    manifest = export(FIXTURES / "seed002-ci.yaml").manifest
    broken = copy.deepcopy(manifest)
    templates(broken)["build"]["container"]["imagee"] = "typo"
    assert any("imagee" in e for e in schema_errors(broken))
    broken = copy.deepcopy(manifest)
    broken["spec"]["activeDeadlineSeconds"] = "soon"
    assert schema_errors(broken)
    cron = export(FIXTURES / "nightly.yaml").manifest
    del cron["spec"]["schedules"]
    assert any("schedules" in e for e in schema_errors(cron))


ARGO_EXAMPLES = sorted(DATA.glob("*.yaml"))


@pytest.mark.parametrize("path", ARGO_EXAMPLES, ids=lambda p: p.name)
def test_argo_examples_round_trip_through_the_models_and_validate(path: Path) -> None:
    from hera.workflows import models as m

    original = yaml.safe_load(path.read_text())
    assert schema_errors(original) == []
    parsed: Any = (m.Workflow if original["kind"] == "Workflow" else m.CronWorkflow).model_validate(original)
    again = parsed.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert again == original
    assert schema_errors(again) == []


def _graph(*nodes: Node, **scopes: float) -> ExecutionGraph:
    all_scopes = {"pipeline": Scope(id="pipeline", kind="pipeline", name="p", timeout=3600)}
    all_scopes.update({k: Scope(id=k, kind="job", name=k, timeout=v) for k, v in scopes.items()})
    return ExecutionGraph(name="unit", scopes=all_scopes, nodes=list(nodes))


def _node(node_id: str, job: str, **kw: Any) -> Node:
    return Node(id=node_id, path=node_id, name=node_id.rsplit("/", 1)[-1], job=job, command=kw.pop("command", "true"),
                scopes=["pipeline", f"job:{job}"], **kw)


def test_a_job_splits_into_step_tasks_when_a_step_has_its_own_retry() -> None:
    graph = _graph(_node("j/a", "j"), _node("j/b", "j", needs=["j/a"], retry={"max": 2}), _node("k/c", "k",
                                                                                                  needs=["j/b"]))
    tasks = plan_tasks(graph)
    assert [(t.name, [n.id for n in t.nodes], t.deps) for t in tasks] == [
        ("j-a", ["j/a"], []), ("j-b", ["j/b"], ["j-a"]), ("k", ["k/c"], ["j-b"])]
    manifest = export_manifest(graph, ArgoSettings()).manifest
    assert schema_errors(manifest) == []
    assert templates(manifest)["j-b"]["retryStrategy"]["limit"] == "2"


def test_task_names_are_dns_labels_that_do_not_start_with_a_digit() -> None:
    long = "x" * 80
    graph = _graph(_node("1st/s", "1st"), _node(f"{long}/s", long), _node("A.b/s", "A.b"), _node("a-b/s", "a-b"))
    names = [t.name for t in plan_tasks(graph)]
    assert len(set(names)) == 4
    for name in names:
        assert name[0].isalpha() and len(name) <= 63 and name == name.lower(), name
    assert schema_errors(export_manifest(graph, ArgoSettings()).manifest) == []


def test_conditions() -> None:
    graph = _graph(
        _node("a/s", "a", env={"MODE": "fast"}, secrets=["TOKEN"]),
        _node("b/s", "b", needs=["a/s"], env={"MODE": "fast"}, condition="env.MODE == 'slow'"),
        _node("c/s", "c", needs=["a/s"], env={"MODE": "fast"}, condition="always() && env.MODE == 'fast'"),
        _node("d/s", "d", needs=["b/s"], condition="cancelled()"),
        _node("e/s", "e", needs=["c/s"]),
        _node("f/s", "f", needs=["e/s"]),
    )
    tasks = tasks_by_name(export_manifest(graph, ArgoSettings()).manifest)
    assert tasks["b"] == {"name": "b", "template": "b", "dependencies": ["a"], "when": "false"}
    assert tasks["c"]["depends"] == "(a.Succeeded || a.Failed || a.Errored || a.Skipped || a.Omitted || a.Daemoned)"
    assert tasks["d"]["when"] == "false"
    # a dependency skipped by its own condition (Omitted) is OK upstream, as in the engine
    assert tasks["e"]["depends"].endswith(" && (c.Succeeded || c.Skipped || c.Daemoned || c.Omitted))")
    assert tasks["f"] == {"name": "f", "template": "f", "dependencies": ["e"]}
    secret = _graph(_node("a/s", "a", secrets=["TOKEN"], condition="env.TOKEN != ''"))
    with pytest.raises(UsageError, match="secret TOKEN"):
        export_manifest(secret, ArgoSettings())
    with pytest.raises(UsageError, match="cannot be a key of a Kubernetes Secret"):
        export_manifest(_graph(_node("a/s", "a", secrets=["MY TOKEN"])), ArgoSettings())


def test_runner_sizes_come_from_worldtree_yaml(tmp_path: Path) -> None:
    config = tmp_path / "worldtree.yaml"
    config.write_text("runners:\n  xl: {cpu: '16', memory: 64Gi}\nargo:\n  default_image: alpine:3.20\n"
                      "  workspace: {size: 10Gi, access_mode: ReadWriteMany, storage_class: nfs}\n")
    pipeline = tmp_path / "ci.yaml"
    pipeline.write_text("jobs:\n  big:\n    runner: xl\n    steps: [{run: make}]\n")
    manifest = build_export(str(pipeline), str(config)).manifest
    assert schema_errors(manifest) == []
    container = templates(manifest)["big"]["container"]
    assert container["resources"] == {"requests": {"cpu": "16", "memory": "64Gi"}}
    assert container["image"] == "alpine:3.20"
    claim = manifest["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim == {"accessModes": ["ReadWriteMany"], "storageClassName": "nfs",
                     "resources": {"requests": {"storage": "10Gi"}}}
    pipeline.write_text("jobs:\n  big:\n    runner: huge\n    steps: [{run: make}]\n")
    with pytest.raises(UsageError, match=r"runner 'huge' is not in the runner size map \(large, medium, small, xl\)"):
        build_export(str(pipeline), str(config))
    assert "xl" not in DEFAULTS["runners"]


def test_generated_scripts_run_as_the_job_would(tmp_path: Path) -> None:
    """The exported script, run by a real /bin/sh: steps in order, set -e, own env and workdir, precheck."""
    (tmp_path / "sub").mkdir()
    graph = _graph(
        _node("j/one", "j", command="echo one >> log; echo \"$SHARED $OWN\" >> log", env={"SHARED": "s", "OWN": "1"}),
        _node("j/two", "j", command="pwd > where", env={"SHARED": "s"}, workdir="sub", needs=["j/one"]),
        _node("j/three", "j", command="echo three >> log", precheck="test -f done", env={"SHARED": "s"},
              needs=["j/two"]),
        _node("j/four", "j", command="false; echo not-reached >> log", env={"SHARED": "s"}, needs=["j/three"]),
        _node("j/five", "j", command="echo five >> log", env={"SHARED": "s"}, needs=["j/four"]),
    )
    tpl = templates(export_manifest(graph, ArgoSettings()).manifest)["j"]
    assert tpl["container"]["env"] == [{"name": "SHARED", "value": "s"}]
    env = {"PATH": "/usr/bin:/bin", **container_env(tpl["container"])}
    script = expand(tpl["container"]["args"][0], env)  # what the kubelet hands /bin/sh
    proc = subprocess.run(["/bin/sh", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert (tmp_path / "log").read_text().splitlines() == ["one", "s 1", "three"]
    assert (tmp_path / "sub" / "where").read_text().strip() == str(tmp_path / "sub")
    (tmp_path / "done").write_text("")
    (tmp_path / "log").write_text("")
    subprocess.run(["/bin/sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, timeout=30)
    assert (tmp_path / "log").read_text().splitlines() == ["one", "s 1"]  # precheck passed: three skipped


def test_dollars_reach_the_shell_as_written_after_the_kubelet_expands(tmp_path: Path) -> None:
    """The kubelet expands ``$(NAME)`` and ``$$`` in env values and args; the export must undo that."""
    command = 'echo "$$" > pid; echo "$(echo sub) ${A} \\$\\$" > out; echo \'$(A) $$ $(\' >> out; echo "$B" >> out'
    graph = _graph(_node("j/s", "j", command=command, env={"A": "a", "B": "x$(A)$$y"}))
    container = templates(export_manifest(graph, ArgoSettings()).manifest)["j"]["container"]
    env = {"PATH": os.environ["PATH"], **container_env(container)}
    assert env["B"] == "x$(A)$$y"
    script = expand(container["args"][0], env)
    assert script == "set -e\nsh -e -c " + shlex.quote(command) + "\n"
    proc = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out").read_text() == "sub a $$\n$(A) $$ $(\nx$(A)$$y\n"
    assert (tmp_path / "pid").read_text().strip().isdigit()


def test_language_steps_write_their_code_and_run_the_configured_command(tmp_path: Path) -> None:
    languages = {"py3": {"image": "python:{version}", "file": "main.py", "command": ["python3", "{script}"]}}
    code = "import os\nprint('hello', os.environ['WHO'], \"it's\")\n"
    graph = _graph(_node("j/s", "j", command=code, env={"WHO": "argo"},
                         target={"kind": "docker", "language": {"name": "py3", "version": "3.12"}}))
    manifest = export_manifest(graph, ArgoSettings(languages=languages)).manifest
    assert schema_errors(manifest) == []
    container = templates(manifest)["j"]["container"]
    assert container["image"] == "python:3.12"
    env = {"PATH": os.environ["PATH"], **container_env(container)}
    proc = subprocess.run(["/bin/sh", "-c", expand(container["args"][0], env)], env=env,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello argo it's\n"
    unknown = _graph(_node("j/s", "j", target={"kind": "docker", "language": {"name": "cobol"}}))
    with pytest.raises(UsageError, match="language 'cobol' has no image configured"):
        export_manifest(unknown, ArgoSettings(languages=languages))


def test_cli_prints_yaml_and_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["argo", "export", str(FIXTURES / "seed002-ci.yaml"), "--name", "ci-1",
                                 "--namespace", "builds"])
    assert result.exit_code == 0, result.output
    manifest = yaml.safe_load(result.stdout)
    assert manifest["metadata"]["name"] == "ci-1" and "generateName" not in manifest["metadata"]
    assert schema_errors(manifest) == []
    as_json = runner.invoke(app, ["argo", "export", str(FIXTURES / "seed002-ci.yaml"), "--json"])
    assert json.loads(as_json.stdout)["kind"] == "Workflow"
    bad = runner.invoke(app, ["argo", "export", str(FIXTURES / "seed002-ci.yaml"), "--namespace", "Not_OK"])
    assert bad.exit_code == 2 and "not a Kubernetes name" in bad.output and "Traceback" not in bad.output
    broken = tmp_path / "ci.yaml"
    broken.write_text("jobs:\n  a:\n    needs: [nope]\n    steps: [{run: x}]\n")
    located = runner.invoke(app, ["argo", "export", str(broken)])
    assert located.exit_code == 2 and f"{broken}:3:" in located.output
    fleet = runner.invoke(app, ["argo", "export", str(ROOT / "examples" / "ssh" / "fleet.yaml")])
    assert fleet.exit_code == 2 and "job 'deploy'" in fleet.output
