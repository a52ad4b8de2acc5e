"""Large pipeline files are compiled once; any change to what the graph depends on misses the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worldtree.app import graph_cache
from worldtree.app.runs import RunOptions, prepare


def _big_pipeline(path: Path, marker: str = "true") -> None:
    lines = ["name: big", "jobs:", "  unknwn: {steps: [{run: x}], titel: t}"]
    lines += [f"  j{i:04d}: {{steps: [{{run: '{marker}'}}]}}" for i in range(2500)]
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size >= graph_cache.MIN_CACHED_BYTES


def test_cache_hit_gives_the_same_graph_and_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLDTREE_CACHE_DIR", str(tmp_path / "cache"))
    file = tmp_path / "big.yaml"
    _big_pipeline(file)
    first = prepare(str(file), RunOptions())
    [entry] = (tmp_path / "cache" / "graphs").glob("*.json")
    second = prepare(str(file), RunOptions())
    assert second.graph == first.graph
    assert second.warnings == first.warnings and "titel" in second.warnings[0].message
    # A hit, not a re-parse: what the entry says (here, a marked name) is what prepare returns.
    cached = json.loads(entry.read_text())
    cached["graph"]["name"] = "from-the-cache"
    entry.write_text(json.dumps(cached))
    third = prepare(str(file), RunOptions())
    assert third.graph.name == "from-the-cache"
    assert third.graph.nodes == first.graph.nodes


def test_changes_miss_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLDTREE_CACHE_DIR", str(tmp_path / "cache"))
    file = tmp_path / "big.yaml"
    _big_pipeline(file)
    base = prepare(str(file), RunOptions())
    assert prepare(str(file), RunOptions(env={"A": "1"})).graph.nodes[-1].env == {"A": "1"}
    _big_pipeline(file, marker="false")
    assert prepare(str(file), RunOptions()).graph.nodes[-1].command == "false"
    assert base.graph.nodes[-1].command == "true"


def test_small_files_and_damaged_entries_are_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLDTREE_CACHE_DIR", str(tmp_path / "cache"))
    small = tmp_path / "small.yaml"
    small.write_text("jobs:\n  a: {steps: [{run: x}]}\n")
    assert graph_cache.cache_key(str(small), False, {}, None) is None
    file = tmp_path / "big.yaml"
    _big_pipeline(file)
    prepare(str(file), RunOptions())
    for entry in (tmp_path / "cache" / "graphs").glob("*.json"):
        entry.write_text("{damaged")
    assert len(prepare(str(file), RunOptions()).graph.nodes) == 2501
