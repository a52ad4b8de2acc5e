"""compile.fanout.expand_hosts: one chain per host, edges rewired (pure)."""

from __future__ import annotations

import pytest

from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.fanout import expand_hosts
from worldtree.compile.loader import load_pipeline_text
from worldtree.errors import SpecError
from worldtree.model.graph import ExecutionGraph
from worldtree.ops.inventory import load_inventory_text

INVENTORY = load_inventory_text("""\
defaults: {user: ops}
hosts:
  web1: 10.0.0.1
  web2: {address: 10.0.0.2, port: 2222}
  db1: {address: 10.0.0.3, password: "${DB_PW}"}
groups:
  web: [web1, web2]
""", "inv.yaml")

PIPELINE = """\
name: deploy
pre: echo pre
post: echo post
jobs:
  build:
    steps: [make]
  deploy:
    needs: [build]
    hosts: [web]
    steps:
      - {name: upload, command: echo up}
      - {name: restart, command: echo restart}
  migrate:
    needs: [deploy]
    hosts: [db1, web1]
    steps: [{name: run, command: echo migrate}]
  notify:
    needs: [migrate]
    steps: [echo done]
"""


def _graph() -> ExecutionGraph:
    return compile_pipeline(load_pipeline_text(PIPELINE, "p.yaml").spec, source="p.yaml")


def test_one_chain_per_host_and_rewired_edges() -> None:
    before = _graph()
    after = expand_hosts(before, INVENTORY)
    needs = {n.id: n.needs for n in after.nodes}
    assert needs["deploy@web1/upload"] == ["build/step-1"]
    assert needs["deploy@web1/restart"] == ["deploy@web1/upload"]
    assert needs["deploy@web2/restart"] == ["deploy@web2/upload"]
    # a fanned job after a fanned job waits for every host of it
    assert needs["migrate@db1/run"] == ["deploy@web1/restart", "deploy@web2/restart"]
    assert needs["notify/step-1"] == ["migrate@db1/run", "migrate@web1/run"]
    assert needs["post"] == ["notify/step-1"]
    assert [n.id for n in before.nodes if n.target.hosts]  # the input is untouched
    assert "deploy/upload" not in needs


def test_copies_carry_the_host() -> None:
    nodes = expand_hosts(_graph(), INVENTORY).by_id()
    web2 = nodes["deploy@web2/upload"]
    assert web2.target.kind == "ssh" and web2.target.host == "web2" and web2.target.hosts is None
    assert web2.target.engine == "ssh://ops@10.0.0.2:2222"
    assert web2.env["WORLDTREE_HOST"] == "web2"
    assert web2.path == "deploy@web2/upload"
    assert nodes["migrate@db1/run"].target.engine == "ssh://ops:${DB_PW}@10.0.0.3"


def test_deterministic_and_json_round_trip() -> None:
    a, b = expand_hosts(_graph(), INVENTORY), expand_hosts(_graph(), INVENTORY)
    assert a == b
    assert ExecutionGraph.model_validate_json(a.model_dump_json()) == a


def test_graph_without_hosts_is_returned_as_is() -> None:
    graph = compile_pipeline(load_pipeline_text("jobs: {a: {steps: [echo]}}", "p.yaml").spec)
    assert expand_hosts(graph, None) is graph


def test_errors() -> None:
    with pytest.raises(SpecError, match="no inventory"):
        expand_hosts(_graph(), None)
    bad = load_inventory_text("hosts: {web1: x}\n", "inv.yaml")
    with pytest.raises(SpecError, match="'web' is neither a host nor a group"):
        expand_hosts(_graph(), bad)


def test_stage_shape_serial_jobs() -> None:
    text = """\
name: s
stages:
  - name: one
    run_mode: serial
    jobs:
      - {name: a, hosts: web, steps: [echo a]}
      - {name: b, steps: [echo b]}
"""
    graph = expand_hosts(compile_pipeline(load_pipeline_text(text, "p.yaml").spec), INVENTORY)
    needs = {n.id: n.needs for n in graph.nodes}
    assert needs["one/b/step-1"] == ["one/a@web1/step-1", "one/a@web2/step-1"]


def test_the_example_compiles_and_fans_out() -> None:
    from pathlib import Path

    from worldtree.compile.loader import load_pipeline
    from worldtree.ops.inventory import load_inventory

    examples = Path(__file__).resolve().parents[2] / "examples" / "ssh"
    graph = compile_pipeline(load_pipeline(examples / "fleet.yaml").spec)
    graph = expand_hosts(graph, load_inventory(examples / "inventory.yaml"))
    ids = [n.id for n in graph.nodes]
    assert "deploy@web1/restart" in ids and "migrate@db1/migrate" in ids
    assert graph.by_id()["migrate@db1/migrate"].target.engine == \
        "ssh://postgres:${DB_SSH_PASSWORD}@db.internal:2222?key_file=~/.ssh/id_ed25519"
