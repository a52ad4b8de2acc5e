"""The driver on the dummy backend: real asyncio and timers, scripted steps, no processes."""

from __future__ import annotations

import time

from worldtree.model.records import LogLine, NodeEvent
from worldtree.model.states import RunState
from worldtree.testing import DummyBackend, RecordingListener, run_pipeline_text


def test_steps_are_steered_by_their_environment() -> None:
    dummy = DummyBackend()
    state, rec = run_pipeline_text("""
on_failure: continue
jobs:
  ok: {steps: [{run: x, environment: {OUTPUT: "one\\ntwo"}}]}
  bad: {steps: [{run: x, environment: {EXIT_CODE: "3"}}]}
  flaky: {steps: [{run: x, environment: {FAIL_TRIES: "1"}, retry: {max: 1, backoff: 0.05}}]}
  broken: {steps: [{run: x, environment: {BACKEND_ERROR: "image foo:1 not found"}}]}
""", dummy=dummy)
    assert state == RunState.FAILED
    assert rec.final() == {"ok/step-1": "succeeded", "bad/step-1": "failed", "flaky/step-1": "succeeded",
                           "broken/step-1": "failed"}
    assert rec.output("ok/step-1") == ["one", "two"]
    assert rec.last("broken/step-1").error == "image foo:1 not found"
    assert rec.last("broken/step-1").reason == "error"
    assert ("flaky/step-1", "run", 2) in dummy.calls
    assert dummy.closed == 1


class _Breaks(RecordingListener):
    """A listener that fails like a closed store writer after ``after`` events."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after

    def on_event(self, event: NodeEvent) -> None:
        super().on_event(event)
        if len(self.events) > self.after:
            raise RuntimeError("the writer of run test-run is closed")

    def on_log(self, line: LogLine) -> None:
        super().on_log(line)


def test_a_listener_that_raises_ends_the_run_as_error_not_pending_forever() -> None:
    from worldtree.app.runs import run_async
    from worldtree.backends.base import RunContext
    from worldtree.compile.compiler import compile_pipeline
    from worldtree.compile.loader import load_pipeline_text
    from worldtree.engine.local import local_driver

    graph = compile_pipeline(load_pipeline_text("""
jobs:
  a: {steps: [{run: x, environment: {SLEEP: "0.2"}}]}
  b: {needs: [a], steps: [{run: x, environment: {SLEEP: "30"}}]}
""").spec)
    dummy = DummyBackend()
    listener = _Breaks(after=1)
    driver = local_driver(RunContext("test-run", 1, "/tmp", graph), listener, concurrency=2,
                          backend_factory=lambda kind, ctx: dummy)
    started = time.monotonic()
    assert run_async(driver) == RunState.ERROR
    assert time.monotonic() - started < 5
    assert driver.fault == "RuntimeError: the writer of run test-run is closed"
    assert ("b/step-1", "run", 1) not in dummy.calls or ("b/step-1", "run") in dummy.stopped


def test_cancel_from_another_thread_stops_a_running_rollback() -> None:
    """Before: a cancel could not stop a rollback (up to 600 s per node)."""
    import threading

    from worldtree.app.runs import run_async
    from worldtree.backends.base import RunContext
    from worldtree.compile.compiler import compile_pipeline
    from worldtree.compile.loader import load_pipeline_text
    from worldtree.engine.local import local_driver

    graph = compile_pipeline(load_pipeline_text("""
on_failure: rollback
jobs:
  deploy: {steps: [{run: x, rollback: undo, environment: {ROLLBACK_SLEEP: "600"}}]}
  verify: {needs: [deploy], steps: [{run: x, environment: {EXIT_CODE: "1"}}]}
""").spec)
    dummy = DummyBackend()
    rec = RecordingListener()
    driver = local_driver(RunContext("r", 1, "/tmp", graph), rec, concurrency=2, backend_factory=lambda k, c: dummy)

    def cancel_when_rolling_back() -> None:
        deadline = time.monotonic() + 10
        while ("deploy/step-1", "rollback", 1) not in dummy.calls and time.monotonic() < deadline:
            time.sleep(0.01)
        driver.cancel_threadsafe("cancelled by test")

    threading.Thread(target=cancel_when_rolling_back, daemon=True).start()
    started = time.monotonic()
    assert run_async(driver) == RunState.CANCELLED
    assert time.monotonic() - started < 5
    assert ("deploy/step-1", "rollback") in dummy.stopped
    assert rec.last("deploy/step-1").reason == "rollback_failed"
    assert rec.last("deploy/step-1").error == "rollback stopped: cancelled by test"


def test_post_and_always_run_after_a_cancel_on_real_processes(tmp_path: object) -> None:
    """The README promises `post` always runs; `if: always()` and `cancelled()` jobs run too."""
    import threading

    from worldtree.app.runs import run_async
    from worldtree.backends.base import RunContext
    from worldtree.compile.compiler import compile_pipeline
    from worldtree.compile.loader import load_pipeline_text
    from worldtree.engine.local import local_driver

    graph = compile_pipeline(load_pipeline_text("""
post: echo post-ran
jobs:
  build: {steps: [{run: sleep 30}]}
  tell: {needs: [build], if: "cancelled()", steps: [{run: echo told}]}
  deploy: {needs: [build], steps: [{run: echo deployed}]}
""").spec)
    rec = RecordingListener()
    driver = local_driver(RunContext("r", 1, str(tmp_path), graph, grace_seconds=1), rec, concurrency=2)

    def cancel_soon() -> None:
        time.sleep(0.3)
        driver.cancel_threadsafe("cancelled by SIGINT")

    threading.Thread(target=cancel_soon, daemon=True).start()
    assert run_async(driver) == RunState.CANCELLED
    assert rec.final() == {"build/step-1": "cancelled", "tell/step-1": "succeeded", "deploy/step-1": "cancelled",
                           "post": "succeeded"}
    assert "post-ran" in rec.output("post") and "told" in rec.output("tell/step-1")


def test_step_timeout_applies_per_try_not_to_all_tries() -> None:
    """Each try gets the full step timeout (GitLab, Argo): three tries of 0.3 s fit a 0.5 s step timeout."""
    state, rec = run_pipeline_text("""
jobs:
  a: {steps: [{run: x, timeout: 0.5, retry: {max: 2, backoff: 0.01}, environment: {SLEEP: "0.3", FAIL_TRIES: "2"}}]}
""", dummy=DummyBackend())
    assert state == RunState.SUCCEEDED
    assert rec.last("a/step-1").try_number == 3
