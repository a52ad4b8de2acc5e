"""Spec -> execution graph: ids, edges, inheritance, targets; the graph is plain data."""

from __future__ import annotations

from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.loader import load_pipeline_text
from worldtree.model.graph import ExecutionGraph


def compile_text(text: str, **kw: object) -> ExecutionGraph:
    return compile_pipeline(load_pipeline_text(text).spec, **kw)  # type: ignore[arg-type]


def test_stage_order_run_mode_and_needs_make_edges() -> None:
    graph = compile_text("""
stages:
  - name: Build It
    jobs:
      - {name: a, steps: [{name: one, command: x}, {name: two, command: y}]}
      - {name: b, steps: [{command: z}]}
  - name: test
    run_mode: serial
    jobs:
      - {name: c, steps: [{command: c}]}
      - {name: d, steps: [{command: d}]}
      - {name: e, needs: [a], steps: [{command: e}]}
""")
    needs = {n.id: n.needs for n in graph.nodes}
    assert needs == {
        "build-it/a/one": [],
        "build-it/a/two": ["build-it/a/one"],
        "build-it/b/step-1": [],
        "test/c/step-1": ["build-it/a/two", "build-it/b/step-1"],
        "test/d/step-1": ["test/c/step-1"],
        "test/e/step-1": ["build-it/a/two"],
    }
    assert graph.by_id()["build-it/a/one"].path == "Build It/a/one"


def test_graph_round_trips_through_json() -> None:
    graph = compile_text("""
name: rt
pre: echo pre
post: echo post
timeout: 1h
environment: {A: 1}
jobs:
  a: {retry: {max: 2, backoff: 3s}, secrets: [T], if: "env.A == '1'", steps: [{run: x, precheck: p, rollback: r}]}
  b: {needs: [a], image: alpine, runner: large, steps: [{run: y, timeout: 90s}]}
""")
    again = ExecutionGraph.model_validate_json(graph.model_dump_json())
    assert again == graph
    assert again.nodes[0].id == "pre" and again.nodes[-1].id == "post"
    assert again.nodes[-1].needs == ["b/step-1"] and again.nodes[-1].when == "always"
    assert again.scopes["pipeline"].timeout == 3600
    b = again.by_id()["b/step-1"]
    assert (b.target.kind, b.target.image, b.target.runner, b.timeout) == ("docker", "alpine", "large", 90)
    a = again.by_id()["a/step-1"]
    assert (a.retry.max, a.retry.backoff, a.secrets, a.condition) == (2, 3.0, ["T"], "env.A == '1'")


def test_environment_inheritance_and_overrides() -> None:
    graph = compile_text("""
environment: {L: p, P: "1"}
stages:
  - name: s
    environment: {L: s}
    jobs:
      - name: j
        environment: {L: j, FLAG: true}
        steps: [{command: x, environment: {L: step}}, {command: y}]
""", env_overrides={"P": "cli"})
    first, second = graph.nodes
    assert first.env == {"L": "step", "P": "cli", "FLAG": "true"}
    assert second.env == {"L": "j", "P": "cli", "FLAG": "true"}


def test_targets_from_engine_image_and_inheritance() -> None:
    graph = compile_text("""
image: alpine
stages:
  - name: s
    jobs:
      - name: j
        steps:
          - {name: in-container, command: x}
          - {name: on-host, command: x, engine: host}
          - {name: remote, command: x, engine: "ssh://u@h:22"}
          - {name: agent, command: x, engine: "idps://id:secret@agents:443"}
          - {name: plugin, plugin: {image: busybox, settings: {a: 1}}}
""")
    kinds = {n.name: n.target.kind for n in graph.nodes}
    assert kinds == {"in-container": "docker", "on-host": "host", "remote": "ssh", "agent": "idp",
                     "plugin": "docker"}
    assert graph.by_id()["s/j/plugin"].command == "/pipeline/plugin/run"
