"""Label selectors and ``idp://`` engines through load and compile: inheritance (the nearest
level wins), located errors, the graph's JSON, and credentials kept out of ``plan``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.loader import load_pipeline_text
from worldtree.errors import SpecError
from worldtree.model.graph import ExecutionGraph
from worldtree.model.labels import LabelSelector


def compile_text(text: str) -> ExecutionGraph:
    return compile_pipeline(load_pipeline_text(text, "p.yaml").spec)


def errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_pipeline_text(text, "p.yaml")
    return [d.render() for d in info.value.diagnostics]


STAGES = """
labels: {os: linux}
stages:
  - name: build
    label_selector:
      match_expressions: [{key: cpu-cores, operator: gt, values: [8]}]
    jobs:
      - {name: inherits-stage, steps: [echo a]}
      - name: own
        labels: {gpu: true}
        steps: [echo b, echo c]
      - {name: any, labels: {}, steps: [echo d]}
  - name: test
    jobs:
      - {name: inherits-pipeline, steps: [echo e]}
"""


def test_nearest_level_wins_whole() -> None:
    nodes = compile_text(STAGES).by_id()
    stage = LabelSelector.model_validate({"match_expressions": [{"key": "cpu-cores", "operator": "GT",
                                                                 "values": ["8"]}]})
    assert nodes["build/inherits-stage/step-1"].selector == stage
    # the job's selector replaces the stage's (and the pipeline's): no merging
    own = LabelSelector(match_labels={"gpu": "true"})
    assert nodes["build/own/step-1"].selector == own
    assert nodes["build/own/step-2"].selector == own  # every step of the job carries it
    assert nodes["build/any/step-1"].selector is None  # `labels: {}` clears the inherited selector
    assert nodes["test/inherits-pipeline/step-1"].selector == LabelSelector(match_labels={"os": "linux"})


def test_jobs_map_shape_takes_selectors_too() -> None:
    graph = compile_text("jobs:\n  a: {run: 'true', label_selector: {match_labels: {env: production}}}\n"
                         "  b: {run: 'true'}\n")
    assert graph.by_id()["a/run"].selector == LabelSelector(match_labels={"env": "production"})
    assert graph.by_id()["b/run"].selector is None


def test_graph_json_round_trips_and_omits_absent_selectors() -> None:
    graph = compile_text(STAGES)
    assert ExecutionGraph.model_validate_json(graph.model_dump_json()) == graph
    plain = compile_text("jobs: {a: {run: 'true'}}\n")
    data = json.loads(plain.model_dump_json())
    assert "selector" not in data["nodes"][0]
    assert "server" not in data["nodes"][0]["target"] and "tls" not in data["nodes"][0]["target"]
    # a graph written before selectors existed loads, with none
    assert ExecutionGraph.model_validate(data).nodes[0].selector is None


def test_bad_selectors_are_located_errors() -> None:
    got = errors("""jobs:
  a:
    label_selector:
      match_expressions:
        - {key: cpu, operator: GTE, values: [8]}
        - {key: gpu, operator: exists, values: [x]}
    run: 'true'
  b:
    labels: {env: prod}
    label_selector: {match_labels: {x: y}}
    run: 'true'
  c:
    label_selector:
      match_labels: {env: prod}
      match_expressions: [{key: env, operator: NOT_IN, values: [dev]}]
    run: 'true'
  d:
    label_selector: {match_labels: {env: prod, env: dev}}
    run: 'true'
""")
    assert got == [
        "p.yaml:5:32: error: jobs.a.label_selector.match_expressions[0].operator: unknown operator 'GTE'; "
        "use one of IN, NOT_IN, EXISTS, NOT_EXISTS, GT, LT",
        "p.yaml:6:11: error: jobs.a.label_selector.match_expressions[1]: gpu: EXISTS takes no `values`; remove them",
        "p.yaml:9:5: error: jobs.b: give `label_selector` or its shorthand `labels`, not both; move the pairs of "
        "`labels` into `label_selector.match_labels`",
        "p.yaml:14:7: error: jobs.c.label_selector: key 'env' is in both match_labels and match_expressions; "
        "keep one of them (all terms must hold, so one is enough)",
        "p.yaml:18:48: error: duplicate key 'env'; YAML keeps only one, remove the other",
    ]


def test_labels_shorthand_errors_are_one_line_each() -> None:
    got = errors("jobs:\n  a: {run: x, labels: [gpu]}\n  b: {run: x, labels: {env: {x: 1}}}\n"
                 "  c: {run: x, label_selector: {match_expression: []}}\n")
    assert got == [
        "p.yaml:2:23: error: jobs.a.labels: labels must be a mapping of key: value (e.g. {env: production})",
        "p.yaml:3:23: error: jobs.b.labels: the value of 'env' must be a string, number or boolean, not dict",
        "p.yaml:4:31: error: jobs.c.label_selector: unknown key `match_expression`; did you mean "
        "`match_expressions`?",
    ]


def test_bad_idp_urls_are_located_errors() -> None:
    got = errors("jobs:\n  a:\n    steps:\n      - {engine: 'idp://id:${T}@host:99999', command: x}\n"
                 "      - {engine: 'idp://id:${T}@', command: y}\n")
    assert got == [
        "p.yaml:4:18: error: engine URL: port must be a number from 1 to 65535",
        "p.yaml:5:18: error: engine URL: write idp://client_id:client_secret@host:port (the worldtree server's "
        "HTTP address)",
    ]


def test_idp_step_carries_its_server() -> None:
    graph = compile_text("jobs:\n  a:\n    secrets: [TOKEN]\n    steps:\n"
                         "      - {engine: 'idp://ci:${TOKEN}@10.0.0.5:9191', command: x}\n"
                         "      - {engine: 'idps://ci:${TOKEN}@[::1]', command: y}\n")
    one, two = graph.nodes
    assert (one.target.kind, one.target.server, one.target.tls) == ("idp", "10.0.0.5:9191", False)
    assert (two.target.kind, two.target.server, two.target.tls) == ("idp", "[::1]:8080", True)


@pytest.mark.parametrize("as_json", [True, False])
def test_plan_never_shows_a_literal_idp_secret(tmp_path: Path, as_json: bool) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("jobs:\n  a:\n    labels: {gpu: true}\n    steps:\n"
                    "      - {engine: 'idp://ci:s3cr%40t-value@10.0.0.5:9191', command: echo hi}\n")
    out = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "plan", str(path),
                          *(["--json"] if as_json else [])], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "s3cr" not in out.stdout + out.stderr
    assert "literal-credential" in out.stderr or "password or key is written" in out.stderr
    if as_json:
        node = json.loads(out.stdout)["nodes"][0]
        assert node["target"]["server"] == "10.0.0.5:9191"
        assert node["target"]["engine"] == "idp://ci:***@10.0.0.5:9191"
        assert node["selector"] == {"match_labels": {"gpu": "true"}, "match_expressions": []}
    else:
        assert "agents: gpu=true" in out.stdout and "server: 10.0.0.5:9191" in out.stdout
