"""A run's state lives in the store: a second process can rebuild the machine and finish the run.

Process A advances a run through the real driver and writer, then "dies" (its writer flushed,
nothing else kept). Process B reads the store, restores the machine, treats the node A was
running as lost (its lease ended) and finishes the run: nothing A finished runs again, the
retry waiting in backoff keeps its time and try number, the job deadline still holds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.loader import load_pipeline_text
from worldtree.engine.dispatch import Report
from worldtree.engine.driver import RunDriver
from worldtree.engine.machine import (
    Begin,
    Dispatch,
    LeaseExpired,
    Machine,
    NodeExited,
    Outcome,
    Tick,
    restore,
)
from worldtree.store import RunStore

PIPELINE = """
on_failure: continue
stages:
  - name: s
    jobs:
      - name: a
        steps: [{command: "true"}]
      - name: b
        timeout: 100
        steps:
          - {command: "true", retry: {max: 1, backoff: 0}}
          - {command: "true"}
      - name: d
        steps: [{command: "false", retry: {max: 2, backoff: 5}}]
"""
T0 = datetime.now(UTC).timestamp()


class _Hands:
    """A dispatcher that only records what it was given: the test plays the executors."""

    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []

    def start(self, work: Dispatch, report: Report) -> None:
        self.started.append((work.node.id, work.try_number))

    def stop(self, node_id: str, why: str) -> None:
        pass

    async def close(self) -> None:
        pass


def test_another_process_takes_a_run_over_from_the_store(store: RunStore) -> None:
    graph = compile_pipeline(load_pipeline_text(PIPELINE).spec)
    # seed-003 stages run in order only within a stage here: a, b, d are all ready at once
    run_id = store.create_run(name="t", source=None, workdir="/tmp", graph_json=graph.model_dump_json(), options={})
    lease = store.start_attempt(run_id, node_ids=[n.id for n in graph.nodes], expect_attempt=0)
    writer = store.writer(run_id, lease.attempt, token=lease.token)
    hands = _Hands()
    a = RunDriver(Machine(graph, concurrency=3), hands, _Listener(writer), run_id=run_id, attempt=lease.attempt,
                  on_scopes=writer.scope_deadlines)
    a.feed(Begin(T0))
    assert hands.started == [("s/a/step-1", 1), ("s/b/step-1", 1), ("s/d/step-1", 1)]
    a.feed(NodeExited("s/a/step-1", Outcome(exit_code=0), T0 + 1))
    a.feed(NodeExited("s/b/step-1", Outcome(exit_code=0), T0 + 2))  # b's second step starts
    a.feed(NodeExited("s/d/step-1", Outcome(exit_code=1), T0 + 3))  # d waits 5 s for try 2
    writer.close()  # process A dies here: only the store remembers

    record = store.get_run(run_id)
    assert record is not None
    states = {n.node: n.state for n in record.nodes}
    assert states == {"s/a/step-1": "succeeded", "s/b/step-1": "succeeded", "s/b/step-2": "running",
                      "s/d/step-1": "running"}
    assert "job:s/b" in record.scope_deadlines
    b = restore(graph, record.nodes, concurrency=3, scope_deadlines=record.scope_deadlines)
    lost = b.advance(LeaseExpired("s/b/step-2", T0 + 4))  # A's executor is gone: that try is lost
    assert [(w.node.id, w.try_number) for w in lost.dispatch] == []  # no retry left for step-2: it fails
    assert b.nodes["s/b/step-2"].state.value == "failed"
    assert "lease" in (b.nodes["s/b/step-2"].error or "")
    assert lost.wake_at is not None and abs(lost.wake_at - (T0 + 8)) < 0.01  # d's retry time survived
    retry = b.advance(Tick(T0 + 8))
    assert [(w.node.id, w.try_number) for w in retry.dispatch] == [("s/d/step-1", 2)]
    done = b.advance(NodeExited("s/d/step-1", Outcome(exit_code=0), T0 + 9))
    assert done.finished is not None and done.finished.value == "failed"
    assert b.nodes["s/a/step-1"].state.value == "succeeded"  # never dispatched again
    # the job deadline came back from the store: b's scope started at T0, timeout 100
    assert abs(b.scope_started["job:s/b"] - T0) < 0.01


class _Listener:
    def __init__(self, writer: object) -> None:
        self.writer = writer

    def on_event(self, event: object) -> None:
        self.writer.node_event(event)  # type: ignore[attr-defined]

    def on_log(self, line: object) -> None:
        self.writer.log(line)  # type: ignore[attr-defined]
