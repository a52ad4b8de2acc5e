"""Hostile documents fail fast, small and located: alias bombs, huge files, self-referring aliases."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from worldtree.compile import yaml_source
from worldtree.compile.loader import load_pipeline, load_pipeline_text
from worldtree.errors import SpecError

# 9 levels of 9 aliases: 9**9 (387 million) strings once expanded, in 342 bytes.
BOMB = "\n".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *[f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)],
]) + "\n"

_MEASURE = """
import json, sys, time
from worldtree.compile.loader import load_pipeline
from worldtree.errors import SpecError
start = time.perf_counter()
try:
    load_pipeline(sys.argv[1])
    rendered = []
except SpecError as exc:
    rendered = [d.render() for d in exc.diagnostics]
# VmHWM, not ru_maxrss: the kernel carries the forking parent's (pytest's) size into ru_maxrss
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - start, "errors": rendered, "max_rss_mb": hwm / 1024}))
"""


def test_an_alias_bomb_fails_fast_and_small(tmp_path: Path) -> None:
    assert len(BOMB) < 400
    file = tmp_path / "bomb.yaml"
    file.write_text(BOMB)
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(file)], capture_output=True, text=True, timeout=60)
    result = json.loads(proc.stdout)
    assert result["errors"] and "aliases expand to more than 200000 nodes" in result["errors"][0]
    assert result["errors"][0].startswith(f"{file}:")
    assert result["seconds"] < 2.0, result
    assert result["max_rss_mb"] < 250, result  # before the bound: 1.6 GB and 11 s


def test_shared_defaults_through_anchors_still_load() -> None:
    jobs = "\n".join(f"  j{i}: {{<<: *defaults, steps: [{{run: 'true'}}]}}" for i in range(500))
    loaded = load_pipeline_text(f"x-defaults: &defaults {{timeout: 60, environment: {{A: '1', B: '2'}}}}\n"
                                f"jobs:\n{jobs}\n")
    assert loaded.spec.jobs is not None and loaded.spec.jobs["j499"].environment == {"A": "1", "B": "2"}


def test_an_alias_to_its_own_ancestor_is_located() -> None:
    with pytest.raises(SpecError) as info:
        load_pipeline_text("jobs:\n  a: &a {steps: [*a]}\n", "self.yaml")
    assert info.value.diagnostics[0].render().startswith("self.yaml:2:")
    assert "nests deeper than" in info.value.diagnostics[0].message


def test_a_document_over_the_size_limit_is_refused_unparsed() -> None:
    text = "# " + "x" * yaml_source.MAX_DOCUMENT_BYTES + "\njobs: {a: {run: 'true'}}\n"
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_pipeline_text(text, "huge.yaml")
    assert time.perf_counter() - start < 0.5
    assert info.value.diagnostics[0].render().startswith(f"huge.yaml:1:1: error: the document is {len(text)} bytes")


def test_a_value_yaml_cannot_construct_is_located() -> None:
    with pytest.raises(SpecError) as info:
        load_pipeline_text("name: !!python/object:os.system x\njobs: {a: {run: 'true'}}\n", "tag.yaml")
    assert info.value.diagnostics[0].render().startswith("tag.yaml:1:7: error: cannot read this value")


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    file = tmp_path / "huge.yaml"
    with file.open("wb") as out:
        out.truncate(yaml_source.MAX_DOCUMENT_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(SpecError) as info:
        load_pipeline(file)
    assert info.value.diagnostics[0].render() == (
        f"{file}:1:1: error: the document is 16777217 bytes, over the limit of 16777216; "
        "split the pipeline into smaller files")


def test_a_document_of_too_many_nodes_stops_at_the_bound_and_is_located(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node bound (tests/attack has the 15 MB flood): counted while composing, located at the first node past it."""
    monkeypatch.setattr(yaml_source, "MAX_NODES", 10)
    text = "name: x\nstages: []\nz:\n" + "- {}\n" * 20  # nodes: 7 before the first `{}`
    with pytest.raises(SpecError) as info:
        load_pipeline_text(text, "many.yaml")
    assert [d.render() for d in info.value.diagnostics] == [
        "many.yaml:7:3: error: the document holds more than 10 values; split the pipeline into smaller files"]
    load_pipeline_text("name: x\njobs: {a: {run: 'true'}}\n")  # 7 nodes: under the bound
