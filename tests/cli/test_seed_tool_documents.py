"""Documents as the seed 003 tool serializes them (every field, zero values, ``state:``) behave like
the same documents written by hand."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli.conftest import Cli

FIXTURES = Path(__file__).parent / "fixtures"


def _plan(cli: Cli, name: str) -> dict[str, object]:
    shutil.copy(FIXTURES / name, cli.cwd / name)
    proc = cli("plan", "--json", name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # the keys that tool writes are known: no warnings
    graph: dict[str, object] = json.loads(proc.stdout)
    graph.pop("source")  # the file's path
    return graph


def test_zero_values_and_state_plan_like_the_plain_document(sqlite_cli: Cli) -> None:
    serialized = (FIXTURES / "seed-tool-serialized.yaml").read_text()
    assert "timeout: 0" in serialized and 'run_mode: ""' in serialized and "state:" in serialized
    assert 'image_registry_password: ""' in serialized and "plugin: null" in serialized
    plain = _plan(sqlite_cli, "seed-tool-plain.yaml")
    assert _plan(sqlite_cli, "seed-tool-serialized.yaml") == plain
    nodes = {n["id"]: n for n in plain["nodes"]}  # type: ignore[attr-defined]
    assert nodes["build/compile/make"]["timeout"] is None  # `timeout: 0` inherits the job's 60
    assert nodes["ship/plugin-job/publish"]["target"]["image_registry_password"] is None


def test_the_serialized_document_runs(sqlite_cli: Cli) -> None:
    text = (FIXTURES / "seed-tool-serialized.yaml").read_text()
    host_only = text[:text.index("  - name: ship")] + text[text.index("workdir: \"\"\nenvironment:"):]
    sqlite_cli.write("p.yaml", host_only)
    proc = sqlite_cli("run", "p.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[build/compile/check] hello" in proc.stdout
