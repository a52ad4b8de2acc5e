"""The execution graph as a stored, versioned IR: old graphs load, ids map to DNS-1123 names, paths are unambiguous."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.loader import load_pipeline_text
from worldtree.model.graph import SCHEMA_VERSION, ExecutionGraph, dns_name

FIXTURES = Path(__file__).parent / "fixtures"
_DNS_1123 = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def test_a_stored_version_1_graph_still_loads() -> None:
    raw = (FIXTURES / "graph-v1.json").read_text()
    assert "schema_version" not in raw  # written by the first milestone, before versions
    graph = ExecutionGraph.model_validate_json(raw)
    assert graph.schema_version == SCHEMA_VERSION == 2
    assert [n.id for n in graph.nodes] == ["build-stage/compile/make-all", "build-stage/compile/check",
                                           "deploy/ship/push", "post"]
    assert graph.by_id()["build-stage/compile/make-all"].retry.max == 2
    assert graph.by_id()["deploy/ship/push"].target.kind == "docker"
    # and it round-trips in the current version
    assert ExecutionGraph.model_validate_json(graph.model_dump_json()) == graph
    assert json.loads(graph.model_dump_json())["schema_version"] == 2


def test_a_graph_from_a_newer_worldtree_is_refused() -> None:
    data = json.loads((FIXTURES / "graph-v1.json").read_text())
    with pytest.raises(ValidationError, match=r"schema_version 3.*upgrade worldtree"):
        ExecutionGraph.model_validate({**data, "schema_version": 3})


@pytest.mark.parametrize("node_id", ["build/compile", "Build", "a-b", "a/b", "a.b", "-x-", "x" * 63, "x" * 64,
                                     "x" * 200, "", "日本/語", "stage/job/" + "y" * 70])
def test_dns_name_is_a_dns_1123_label(node_id: str) -> None:
    name = dns_name(node_id)
    assert _DNS_1123.match(name) and len(name) <= 63, name
    assert dns_name(node_id) == name  # deterministic


def test_dns_names_keep_valid_ids_and_never_clash() -> None:
    assert dns_name("compile") == "compile" and dns_name("x" * 63) == "x" * 63
    clashing = ["a/b", "a-b", "a.b", "A-b", "a_b", "x" * 64, "x" * 65, "x" * 62 + "/y", "x" * 62 + "/z"]
    names = [dns_name(i) for i in clashing]
    assert len(set(names)) == len(clashing), names


def test_paths_are_unambiguous_when_names_hold_a_slash() -> None:
    loaded = load_pipeline_text("""
jobs:
  a: {steps: [{name: b/s, run: "true"}]}
  a/b: {steps: [{name: s, run: "true"}]}
""")
    graph = compile_pipeline(loaded.spec)
    paths = [n.path for n in graph.nodes]
    assert len(set(paths)) == 2, paths
    assert paths == ["a/b\u2215s", "a\u2215b/s"]
    assert [len(p.split("/")) for p in paths] == [2, 2]  # each splits into job / step again
