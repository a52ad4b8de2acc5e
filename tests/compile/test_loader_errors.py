"""Loader diagnostics, data-driven: each cases/NAME.yaml has the exact expected output in NAME.expected."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from worldtree.compile.loader import load_pipeline, load_pipeline_text
from worldtree.errors import SpecError

CASES = Path(__file__).parent / "cases"


@pytest.mark.parametrize("case", sorted(p.stem for p in CASES.glob("*.yaml")))
def test_case(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES)
    expected = (CASES / f"{case}.expected").read_text().splitlines()
    try:
        loaded = load_pipeline(f"{case}.yaml")
        got = [d.render() for d in loaded.warnings]
    except SpecError as exc:
        got = [d.render() for d in exc.diagnostics]
    assert got == expected


def test_strict_turns_unknown_keys_into_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CASES)
    with pytest.raises(SpecError) as info:
        load_pipeline("unknown-key.yaml", strict=True)
    assert {d.severity for d in info.value.diagnostics} == {"error"}
    assert len(info.value.diagnostics) == 3


def test_missing_file_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_pipeline(tmp_path / "nope.yaml")
    assert info.value.diagnostics[0].render().endswith("nope.yaml:1:1: error: no such file; check the path")


def test_garbage_collection_resumes_after_a_load_fails() -> None:
    """Loading pauses the cyclic collector (speed); a bad file must not leave it off for the run."""
    assert gc.isenabled()
    with pytest.raises(SpecError):
        load_pipeline_text("jobs: {a: {needs: [a], run: 'true'}}\n")
    assert gc.isenabled()
    load_pipeline_text("jobs: {a: {run: 'true'}}\n")
    assert gc.isenabled()
