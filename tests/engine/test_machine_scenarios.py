"""The state machine, driven by scripts of events (Woodpecker's e2e cases are the model).

Each ``scenarios/*.yaml`` holds a pipeline, a script and the expected outcome. A script step
names the wall-clock second it happens at and one event:

``begin``, ``exit: NODE`` (with ``code``, ``error``, ``precheck_done``, ``stopped`` and
``purpose: rollback``), ``cancel: REASON``, ``tick``, ``lease_expired: NODE``, ``fault: ERROR``.

and may check the decision it produced: ``dispatch`` (node ids in order; ``#N`` for try N,
``:rollback`` for a rollback), ``stop`` (node ids), ``wake`` (seconds of the next wake-up) and
``finished`` (the run's final state). ``expect`` checks the nodes' final states, reasons, errors
and tries. No processes, no clock, no asyncio: the machine is a pure function of its events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.loader import load_pipeline_text
from worldtree.engine.machine import (
    Begin,
    CancelRequested,
    Decision,
    Event,
    Fault,
    LeaseExpired,
    Machine,
    NodeExited,
    Outcome,
    Tick,
)

SCENARIOS = sorted((Path(__file__).parent / "scenarios").glob("*.yaml"))
T0 = 1_800_000_000.0  # any wall-clock origin will do: the machine only compares times


def _event(step: dict[str, Any]) -> Event:
    now = T0 + float(step["at"])
    if step.get("begin"):
        return Begin(now)
    if "exit" in step:
        outcome = Outcome(exit_code=step.get("code"), error=step.get("error"),
                          precheck_done=bool(step.get("precheck_done")), stopped=bool(step.get("stopped")))
        return NodeExited(step["exit"], outcome, now, step.get("purpose", "run"))
    if "cancel" in step:
        return CancelRequested(step["cancel"], now)
    if step.get("tick"):
        return Tick(now)
    if "lease_expired" in step:
        return LeaseExpired(step["lease_expired"], now)
    if "fault" in step:
        return Fault(step["fault"], now)
    raise AssertionError(f"unknown script step {step}")


def _dispatched(d: Decision) -> list[str]:
    out = []
    for work in d.dispatch:
        label = work.node.id
        if work.purpose == "rollback":
            label += ":rollback"
        elif work.try_number > 1:
            label += f"#{work.try_number}"
        out.append(label)
    return out


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    case = yaml.safe_load(path.read_text())
    graph = compile_pipeline(load_pipeline_text(case["pipeline"], str(path)).spec)
    machine = Machine(graph, concurrency=case.get("concurrency", 2), secrets_available=case.get("secrets", []),
                      reuse=case.get("reuse"))
    finished = None
    for i, step in enumerate(case["script"]):
        where = f"{path.name} step {i} ({step})"
        decision = machine.advance(_event(step))
        if "dispatch" in step:
            assert _dispatched(decision) == step["dispatch"], where
        if "stop" in step:
            assert [node for node, _ in decision.stop] == step["stop"], where
        if "wake" in step:
            assert decision.wake_at is not None and decision.wake_at - T0 == pytest.approx(step["wake"]), where
        if "finished" in step:
            assert decision.finished is not None and decision.finished.value == step["finished"], where
        elif decision.finished is not None:
            raise AssertionError(f"{where}: finished early as {decision.finished}")
        finished = decision.finished or finished
    assert finished is not None, f"{path.name}: the script ended before the run did"
    expect = case["expect"]
    for node, state in expect.get("nodes", {}).items():
        assert machine.nodes[node].state.value == state, node
    for node, reason in expect.get("reasons", {}).items():
        assert machine.nodes[node].reason == reason, node
    for node, error in expect.get("errors", {}).items():
        assert machine.nodes[node].error == error, node
    for node, tries in expect.get("tries", {}).items():
        assert machine.nodes[node].try_number == tries, node


def test_machine_reads_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Time comes only from events: freezing every clock source changes nothing."""
    import time

    def no_clock() -> float:
        raise AssertionError("the machine read a clock")

    monkeypatch.setattr(time, "time", no_clock)
    monkeypatch.setattr(time, "monotonic", no_clock)
    graph = compile_pipeline(load_pipeline_text("jobs:\n  a: {steps: [{run: 'true', timeout: 5}]}\n").spec)
    machine = Machine(graph, concurrency=1)
    assert machine.advance(Begin(T0)).wake_at == T0 + 5
    assert machine.advance(NodeExited("a/step-1", Outcome(exit_code=0), T0 + 1)).finished is not None
