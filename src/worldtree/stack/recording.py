"""A stack apply recorded as a run in the run store, so ``worldtree runs`` / ``logs`` show it.

The run's graph has one node per plugin call, id ``<phase>/<plugin name>`` (job = the phase,
``needs`` = every node of the phase before), so the stored graph says what the apply would do
and in what order. The recorder follows the store's call order (``start_attempt`` → writer →
``finish_attempt``): nodes go ``running`` when their plugin starts, ``succeeded``/``failed``
when it answers (the plugin's error as the node's error), the plugin's stderr lines are the
node's log (already masked), and nodes a failed phase never reached end ``skipped`` (reason
``upstream``). The run ends ``succeeded``, ``failed`` (a plugin failed or an apply check refused
mid-way) or ``error`` (the store or worldtree broke).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from worldtree.model.graph import ExecutionGraph, Node, Scope, Target
from worldtree.model.records import LogLine, NodeEvent

if TYPE_CHECKING:
    from worldtree.store.api import AttemptLease, RunStore, RunWriter


def _now() -> datetime:
    return datetime.now(UTC)


def apply_graph(name: str, source: str | None, calls: list[tuple[str, str, str]]) -> ExecutionGraph:
    """(phase, node id, command) per plugin call -> the run's graph; phases chained in order."""
    nodes: list[Node] = []
    earlier: list[str] = []
    in_phase: list[str] = []
    current_phase = ""
    for phase, node_id, command in calls:
        if phase != current_phase:
            earlier, current_phase, in_phase = earlier + in_phase, phase, []
        nodes.append(Node(id=node_id, path=node_id, name=node_id.split("/", 1)[1], job=phase, command=command,
                          scopes=["pipeline"], target=Target(kind="host"), needs=list(earlier)))
        in_phase.append(node_id)
    return ExecutionGraph(name=name, source=source, scopes={"pipeline": Scope(id="pipeline", kind="pipeline", name=name,
                                                                               timeout=86400)}, nodes=nodes)


class ApplyRecorder:
    """One apply = one run; every method is safe to call from the plugin threads."""

    def __init__(self, store: RunStore, graph: ExecutionGraph, workdir: str) -> None:
        self.store = store
        self.node_ids = [n.id for n in graph.nodes]
        self.run_id = store.create_run(name=graph.name, source=graph.source, workdir=workdir,
                                       graph_json=graph.model_dump_json(), options={"kind": "stack-apply"},
                                       graph_version=graph.schema_version)
        self.lease: AttemptLease = store.start_attempt(self.run_id, node_ids=self.node_ids)
        self.fault: BaseException | None = None
        self.writer: RunWriter = store.writer(self.run_id, self.lease.attempt, token=self.lease.token,
                                              on_fault=self._on_fault)
        self.started: dict[str, datetime] = {}
        self.done: set[str] = set()
        self._lock = threading.Lock()

    def _on_fault(self, exc: BaseException) -> None:
        self.fault = exc

    def _event(self, node: str, state: str, **fields: object) -> None:
        self.writer.node_event(NodeEvent(run_id=self.run_id, attempt=self.lease.attempt, node=node, state=state,
                                         ts=_now(), **fields))  # type: ignore[arg-type]

    def started_node(self, node: str) -> Callable[[str], None]:
        """Mark ``node`` running; returns the function that logs one of its (masked) lines."""
        with self._lock:
            self.started[node] = _now()
        self._event(node, "running", started_at=self.started[node])

        def log(line: str) -> None:
            self.writer.log(LogLine(run_id=self.run_id, attempt=self.lease.attempt, node=node, stream="stderr",
                                    line=line, ts=_now()))

        return log

    def finished_node(self, node: str, ok: bool, error: str | None = None) -> None:
        with self._lock:
            self.done.add(node)
            started = self.started.get(node)
        self._event(node, "succeeded" if ok else "failed", started_at=started, finished_at=_now(),
                    exit_code=0 if ok else 1, error=error)

    def finish(self, ok: bool, broke: bool = False) -> None:
        """Skip what never ran, flush, and end the run (always; errors in here are the store's)."""
        for node in self.node_ids:
            if node not in self.done and node not in self.started:
                self._event(node, "skipped", reason="upstream")
            elif node not in self.done:
                self._event(node, "failed", started_at=self.started[node], finished_at=_now(),
                            error="apply stopped")
        self.writer.close()
        state = "error" if broke or self.fault is not None else "succeeded" if ok else "failed"
        self.store.finish_attempt(self.run_id, self.lease.attempt, state, token=self.lease.token)
