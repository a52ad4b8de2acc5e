"""The scheduler on real subprocesses: ordering, needs, concurrency, conditions, retries, rollback."""

from __future__ import annotations

import time
from pathlib import Path

from worldtree.model.states import RunState
from worldtree.testing import run_pipeline_text


def test_steps_run_in_order_and_jobs_follow_stages(tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    state, rec = run_pipeline_text(f"""
stages:
  - name: one
    jobs:
      - name: a
        steps:
          - command: echo a1 >> {log}
          - command: echo a2 >> {log}
  - name: two
    jobs:
      - name: b
        steps: [{{command: echo b >> {log}}}]
""")
    assert state == RunState.SUCCEEDED
    assert log.read_text().split() == ["a1", "a2", "b"]
    assert set(rec.final().values()) == {"succeeded"}


def test_needs_starts_a_job_as_soon_as_its_needs_finish(tmp_path: Path) -> None:
    log = tmp_path / "needs.log"
    state, _ = run_pipeline_text(f"""
jobs:
  slow:
    steps: [{{run: sleep 0.6 && echo slow >> {log}}}]
  fast:
    steps: [{{run: echo fast >> {log}}}]
  after-fast:
    needs: [fast]
    steps: [{{run: echo after-fast >> {log}}}]
  last:
    needs: [slow, after-fast]
    steps: [{{run: echo last >> {log}}}]
""")
    assert state == RunState.SUCCEEDED
    assert log.read_text().split() == ["fast", "after-fast", "slow", "last"]


def test_concurrency_bound_is_never_exceeded(tmp_path: Path) -> None:
    jobs = "\n".join(
        f"  j{i}:\n    steps: [{{run: 'mkdir {tmp_path}/lock{i} && ls -d {tmp_path}/lock* | wc -l >> {tmp_path}/n; "
        f"sleep 0.1; rmdir {tmp_path}/lock{i}'}}]" for i in range(12))
    state, _ = run_pipeline_text("jobs:\n" + jobs, concurrency=3)
    assert state == RunState.SUCCEEDED
    counts = [int(x) for x in (tmp_path / "n").read_text().split()]
    assert len(counts) == 12
    assert max(counts) <= 3
    assert max(counts) >= 2  # it did run in parallel


def test_environment_inherits_and_injects(tmp_path: Path) -> None:
    state, rec = run_pipeline_text("""
name: envtest
environment: {LEVEL: pipeline, P: p}
stages:
  - name: s
    environment: {LEVEL: stage, S: s}
    jobs:
      - name: j
        environment: {LEVEL: job, J: j}
        steps:
          - environment: {LEVEL: step}
            command: echo "$LEVEL $P $S $J $PIPELINE_NAME $PIPELINE_RUNNER $PIPELINE_JOB $OVERRIDE"
          - command: echo "$PIPELINE_WORKDIR|$PIPELINE_RUNNER_OS|$PIPELINE_RUNNER_USER"
""", workdir=str(tmp_path), env={"OVERRIDE": "cli"})
    assert state == RunState.SUCCEEDED
    out = rec.output()
    assert out[0] == "step p s j envtest pipeline j cli"
    assert out[1].startswith(f"{tmp_path}|linux|")


def test_fail_fast_skips_the_rest_and_exit_state_is_failed() -> None:
    state, rec = run_pipeline_text("""
stages:
  - name: a
    jobs:
      - name: bad
        steps: [{command: exit 4}]
      - name: slow
        steps: [{command: sleep 5}]
  - name: b
    jobs:
      - name: never
        steps: [{command: echo never}]
""")
    assert state == RunState.FAILED
    final = rec.final()
    assert final["a/bad/step-1"] == "failed"
    assert rec.last("a/bad/step-1").exit_code == 4
    assert final["a/slow/step-1"] == "cancelled"
    assert final["b/never/step-1"] == "skipped"


def test_on_failure_continue_runs_independent_branches() -> None:
    state, rec = run_pipeline_text("""
on_failure: continue
jobs:
  bad: {steps: [{run: exit 1}]}
  after-bad: {needs: [bad], steps: [{run: echo no}]}
  other: {steps: [{run: sleep 0.2 && echo yes}]}
""")
    assert state == RunState.FAILED
    final = rec.final()
    assert final == {"bad/step-1": "failed", "after-bad/step-1": "skipped", "other/step-1": "succeeded"}
    assert "upstream" in (rec.last("after-bad/step-1").error or "")


def test_when_and_if_conditions() -> None:
    state, rec = run_pipeline_text("""
on_failure: continue
environment: {DEPLOY: "yes"}
jobs:
  ok: {steps: [{run: "true"}]}
  only-on-failure: {needs: [ok], when: on_failure, steps: [{run: echo x}]}
  always: {needs: [ok], when: always, steps: [{run: echo x}]}
  deploy: {needs: [ok], if: "env.DEPLOY == 'yes'", steps: [{run: echo deploying}]}
  no-deploy: {needs: [ok], if: "${{ env.DEPLOY != 'yes' }}", steps: [{run: echo x}]}
""")
    assert state == RunState.SUCCEEDED
    final = rec.final()
    assert final["only-on-failure/step-1"] == "skipped"
    assert final["always/step-1"] == "succeeded"
    assert final["deploy/step-1"] == "succeeded"
    assert final["no-deploy/step-1"] == "skipped"


def test_allow_failure_does_not_fail_the_pipeline() -> None:
    state, rec = run_pipeline_text("""
jobs:
  flaky: {allow_failure: true, steps: [{run: exit 2}]}
  next: {needs: [flaky], steps: [{run: echo next}]}
""")
    assert state == RunState.SUCCEEDED
    assert rec.final() == {"flaky/step-1": "failed", "next/step-1": "succeeded"}
    assert rec.last("flaky/step-1").reason == "allowed to fail"


def test_retry_with_backoff_until_success(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    state, rec = run_pipeline_text(f"""
jobs:
  flaky:
    retry: {{max: 3, backoff: 0.05}}
    steps:
      - run: echo x >> {counter}; test $(wc -l < {counter}) -ge 3
""")
    assert state == RunState.SUCCEEDED
    assert len(counter.read_text().split()) == 3
    retries = [e for e in rec.events if e.reason and e.reason.startswith("retry")]
    assert [e.reason for e in retries] == ["retry 1/3 in 0.05s after exit code 1",
                                           "retry 2/3 in 0.1s after exit code 1"]
    assert rec.last("flaky/step-1").try_number == 3


def test_retry_gives_up_after_max() -> None:
    started = time.monotonic()
    state, rec = run_pipeline_text("jobs:\n  j: {retry: 2, steps: [{run: exit 7}]}")
    assert state == RunState.FAILED
    assert rec.last("j/step-1").try_number == 3
    assert rec.last("j/step-1").error == "exit code 7"
    assert time.monotonic() - started >= 3.0  # backoff 1 s then 2 s


def test_precheck_skips_done_work(tmp_path: Path) -> None:
    (tmp_path / "done").mkdir()
    state, rec = run_pipeline_text(f"""
jobs:
  j:
    steps:
      - {{name: already, precheck: "test -d {tmp_path}/done", command: "echo should-not-run"}}
      - {{name: todo, precheck: "test -d {tmp_path}/todo", command: "mkdir {tmp_path}/todo"}}
      - {{name: after, command: "echo after"}}
""")
    assert state == RunState.SUCCEEDED
    final = rec.final()
    assert final["j/already"] == "skipped" and rec.last("j/already").reason == "precheck"
    assert final["j/todo"] == "succeeded" and (tmp_path / "todo").is_dir()
    assert final["j/after"] == "succeeded"
    assert "should-not-run" not in rec.output()


def test_rollback_runs_completed_steps_in_reverse(tmp_path: Path) -> None:
    log = tmp_path / "rb.log"
    state, rec = run_pipeline_text(f"""
on_failure: rollback
stages:
  - name: s
    run_mode: serial
    jobs:
      - name: j
        steps:
          - {{name: one, command: "echo 1", rollback: "echo undo-one >> {log}"}}
          - {{name: two, command: "echo 2", rollback: "echo undo-two >> {log}; exit 3"}}
          - {{name: three, command: "exit 1", rollback: "echo undo-three >> {log}"}}
""")
    assert state == RunState.FAILED
    # reverse completion order; a failing rollback is logged and the others still run
    assert log.read_text().split() == ["undo-two", "undo-one"]
    reasons = {e.node: e.reason for e in rec.events if e.reason and e.reason.startswith("roll")}
    assert reasons == {"s/j/one": "rolled_back", "s/j/two": "rollback_failed"}


def test_pre_and_post_hooks(tmp_path: Path) -> None:
    log = tmp_path / "hooks"
    state, rec = run_pipeline_text(f"""
pre: echo pre >> {log}
post: echo post >> {log}
jobs:
  a: {{steps: [{{run: echo a >> {log}}}]}}
  b: {{steps: [{{run: exit 1}}]}}
""", concurrency=1)
    assert state == RunState.FAILED
    lines = log.read_text().split()
    assert lines[0] == "pre" and lines[-1] == "post"
    assert rec.final()["post"] == "succeeded"


def test_missing_secret_fails_the_job_naming_it() -> None:
    state, rec = run_pipeline_text("""
jobs:
  deploy:
    secrets: [DEPLOY_TOKEN]
    steps: [{run: echo deploying}]
""")
    assert state == RunState.FAILED
    ev = rec.last("deploy/step-1")
    assert ev.state == "failed" and "DEPLOY_TOKEN" in (ev.error or "")
    assert rec.output() == []
