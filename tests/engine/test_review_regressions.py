"""Regressions found in review: each test reproduces a bug a user hit before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from worldtree.compile.loader import load_pipeline_text
from worldtree.engine.conditions import Status, evaluate
from worldtree.errors import SpecError
from worldtree.model.states import RunState
from worldtree.testing import run_pipeline_text

_OK = Status(upstream_ok=True, failed=False, cancelled=False)


@pytest.mark.parametrize(("expression", "env"), [
    ("env.DEPLOY == 'true'", {"DEPLOY": "true"}),
    ('env.FLAG != "false"', {"FLAG": "yes"}),
    ("env.MSG == 'hi!' && env.X == 'a||b'", {"MSG": "hi!", "X": "a||b"}),
    ("!(env.D == 'null')", {"D": "x"}),
])
def test_condition_literals_inside_strings_are_kept(expression: str, env: dict[str, str]) -> None:
    assert evaluate(expression, env, _OK) is True


def test_if_env_equals_true_runs_the_job() -> None:
    state, rec = run_pipeline_text("""
jobs:
  a:
    environment: {DEPLOY: "true"}
    if: env.DEPLOY == 'true'
    steps: [{run: echo deploying}]
""")
    assert state == RunState.SUCCEEDED
    assert rec.final() == {"a/step-1": "succeeded"}


@pytest.mark.parametrize(("text", "needle"), [
    ("jobs:\n  b:\n    steps:\n      - {name: Build Job, run: 'true'}\n      - {name: build-job, run: 'true'}\n",
     "same id 'build-job'"),
    ("jobs:\n  Build:\n    steps: [{run: 'true'}]\n  build:\n    steps: [{run: 'true'}]\n", "same id 'build'"),
    ("jobs:\n  b:\n    steps:\n      - {run: 'true'}\n      - {name: step-1, run: 'true'}\n", "same id 'step-1'"),
    ("stages:\n  - name: Test\n    jobs: [{name: a, steps: [{command: 'true'}]}]\n"
     "  - name: test\n    jobs: [{name: b, steps: [{command: 'true'}]}]\n", "same id 'test'"),
])
def test_names_that_slug_to_the_same_node_id_are_rejected(text: str, needle: str) -> None:
    # Before: the second node silently replaced the first, or needed itself and the run hung forever.
    with pytest.raises(SpecError) as info:
        load_pipeline_text(text, "p.yaml")
    assert any(needle in d.message and d.line > 1 for d in info.value.diagnostics)


def test_fail_fast_does_not_cancel_a_running_always_job(tmp_path: Path) -> None:
    state, rec = run_pipeline_text(f"""
jobs:
  bad:
    steps: [{{run: sleep 0.2; exit 1}}]
  cleanup:
    if: always()
    steps: [{{run: sleep 0.6 && touch {tmp_path}/cleaned}}]
""")
    assert state == RunState.FAILED
    assert rec.final() == {"bad/step-1": "failed", "cleanup/step-1": "succeeded"}
    assert (tmp_path / "cleaned").exists()


def test_a_secret_at_the_line_limit_is_not_cut_in_two(tmp_path: Path) -> None:
    from worldtree.backends.spawn import LINE_LIMIT

    script = tmp_path / "long.py"
    script.write_text(f"import sys\nsys.stdout.write('x' * {LINE_LIMIT - 4} + sys.argv[1] + '\\n')\n")
    # Before: the 1 MiB cut fell inside the secret and each half escaped the mask.
    state, rec = run_pipeline_text(f"""
jobs:
  a:
    secrets: [TOK]
    steps: [{{run: 'python3 {script} "$TOK"'}}]
""", secrets={"TOK": "supersecret"})
    assert state == RunState.SUCCEEDED
    out = rec.output("a/step-1")
    assert "".join(out).endswith("***") and not any("secret" in piece for piece in out)
