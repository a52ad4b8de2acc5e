"""Mirror a watched Argo Workflow into the run store, so ``worldtree runs`` shows it like any run.

Only the store's public API is used (``create_run``, ``start_attempt``, ``writer``,
``finish_attempt``); nothing in the schema changes. The run records the compiled graph, its
``workdir`` is ``argo://NAMESPACE/WORKFLOW`` and its options say ``executor: argo``.

Argo reports per task (the DAG task's node: a ``Pod``, a ``Retry`` parent, or ``Skipped``/
``Omitted``); each of the task's graph nodes takes the task's phase (a job that is one task has
all its steps share it). Phases: ``Running`` → running, ``Succeeded`` → succeeded,
``Failed``/``Error`` → failed, ``Skipped``/``Omitted`` → skipped (reason ``condition``). When the
Workflow ends, nodes Argo never reached end ``cancelled`` if it was stopped, else ``skipped``
(reason ``upstream``), and the run ends succeeded, failed, or cancelled after a stop.

The attempt's lease is renewed by the writer while this process watches; if it dies, readers
see the run as ``interrupted`` (the Workflow itself goes on in the cluster).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from worldtree.argo.tasks import TaskPlan
from worldtree.model.graph import ExecutionGraph
from worldtree.model.records import NodeEvent
from worldtree.model.states import TERMINAL, NodeState, RunState, SkipReason
from worldtree.store.api import RunStore

__all__ = ["RunMirror"]

_PHASES = {"Running": NodeState.RUNNING, "Succeeded": NodeState.SUCCEEDED, "Failed": NodeState.FAILED,
           "Error": NodeState.FAILED, "Skipped": NodeState.SKIPPED, "Omitted": NodeState.SKIPPED}


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class RunMirror:
    def __init__(self, store: RunStore, graph: ExecutionGraph, tasks: list[TaskPlan], *, namespace: str,
                 workflow: str) -> None:
        self.store = store
        self.run_id = store.create_run(
            name=graph.name, source=graph.source, workdir=f"argo://{namespace}/{workflow}",
            graph_json=graph.model_dump_json(), graph_version=graph.schema_version,
            options={"executor": "argo", "namespace": namespace, "workflow": workflow})
        self.lease = store.start_attempt(self.run_id, node_ids=[n.id for n in graph.nodes])
        self.faults: list[BaseException] = []
        self.writer = store.writer(self.run_id, self.lease.attempt, token=self.lease.token,
                                   on_fault=self.faults.append)
        self.nodes_of = {t.name: [n.id for n in t.nodes] for t in tasks}
        self.states: dict[str, NodeState] = {n.id: NodeState.PENDING for n in graph.nodes}
        self.started: dict[str, datetime | None] = {}

    def _event(self, node: str, state: NodeState, **fields: Any) -> None:
        if self.states[node] == state or self.states[node] in TERMINAL:
            return
        self.states[node] = state
        self.writer.node_event(NodeEvent(run_id=self.run_id, attempt=self.lease.attempt, node=node, state=state,
                                         ts=datetime.now(UTC), **fields))

    def __call__(self, workflow: dict[str, Any]) -> None:
        """A new version of the Workflow: record the task phases that changed."""
        for argo_node in ((workflow.get("status") or {}).get("nodes") or {}).values():
            if not isinstance(argo_node, dict):
                continue
            task = argo_node.get("displayName")
            state = _PHASES.get(str(argo_node.get("phase")))
            if task not in self.nodes_of or state is None or argo_node.get("type") not in (
                    "Pod", "Retry", "Skipped", "Omitted"):
                continue
            started = _time(argo_node.get("startedAt"))
            finished = _time(argo_node.get("finishedAt"))
            message = argo_node.get("message")
            for node in self.nodes_of[task]:
                if state == NodeState.RUNNING:
                    self._event(node, state, started_at=started)
                elif state == NodeState.SKIPPED:
                    self._event(node, state, reason=SkipReason.CONDITION, finished_at=finished or datetime.now(UTC))
                else:
                    self._event(node, state, started_at=started, finished_at=finished or datetime.now(UTC),
                                error=str(message) if message and state == NodeState.FAILED else None)

    def finish(self, phase: str | None, *, stopped: bool) -> RunState:
        """Close the record: nodes Argo never reached, then the run's final state (returned)."""
        now = datetime.now(UTC)
        for node, state in self.states.items():
            if state not in TERMINAL:
                if state == NodeState.RUNNING and not stopped:
                    self._event(node, NodeState.FAILED, finished_at=now, error="the Workflow ended while it ran")
                elif stopped:
                    self._event(node, NodeState.CANCELLED, finished_at=now, error="the Workflow was stopped")
                else:
                    self._event(node, NodeState.SKIPPED, finished_at=now, reason=SkipReason.UPSTREAM)
        if phase == "Succeeded":
            final = RunState.SUCCEEDED
        elif stopped:
            final = RunState.CANCELLED
        elif phase in ("Failed", "Error"):
            final = RunState.FAILED
        else:
            final = RunState.ERROR
        self.writer.close()
        self.store.finish_attempt(self.run_id, self.lease.attempt, final, token=self.lease.token)
        return final
