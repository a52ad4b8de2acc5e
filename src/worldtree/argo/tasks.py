"""Group a graph's nodes into Argo DAG tasks: one task per job, or one per step when it must be.

Seed 002 §2 maps a job to one task whose script runs its steps in order under ``set -e``. That
is exact only while the steps behave like lines of one script, so a job becomes one task when
its steps share a target and secrets and none has its own ``timeout``, ``retry``,
``allow_failure``, ``when``/``if:`` or ``rollback``. Otherwise each step becomes its own task
(chained by the step order the compiler already wrote as ``needs``): a per-step retry must not
re-run the steps before it, and ``allow_failure`` must let the next step run. Every task mounts
the same workspace volume, so a split job still sees its own files.

Host fan-out (``job@host``) gives one group per host. Task names are DNS-1123 labels that do
not start with a digit (Argo refuses such names in ``dependencies``/``depends``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from worldtree.model.graph import ExecutionGraph, Node, dns_name, slug

__all__ = ["TaskPlan", "plan_tasks"]

_LABEL = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass
class TaskPlan:
    """One DAG task and its template: the nodes it runs, in order, and the tasks it waits for."""

    name: str
    nodes: list[Node]
    deps: list[str] = field(default_factory=list)

    @property
    def first(self) -> Node:
        return self.nodes[0]


def _group_key(node: Node) -> str:
    job_scope = next((s for s in node.scopes if s.startswith("job:")), None)
    if job_scope is None:  # pre/post hooks: a task of their own
        return f"node:{node.id}"
    return f"{job_scope}@{node.target.host}" if node.target.host else job_scope


def _is_script_like(nodes: list[Node]) -> bool:
    """Whether the steps behave exactly as consecutive lines of one ``set -e`` script."""
    if len(nodes) == 1:
        return True
    first = nodes[0]
    return all(n.target == first.target and n.secrets == first.secrets and n.timeout is None
               and n.retry.max == 0 and not n.allow_failure and n.when == "on_success"
               and n.condition is None and n.rollback is None and n.kind == "step"
               for n in nodes)


class _Names:
    """Unique task names: a readable slug when it is free and valid, else the hashed ``dns_name``."""

    def __init__(self) -> None:
        self.used: set[str] = {"pipeline"}

    def take(self, raw: str) -> str:
        readable = "-".join(slug(part) for part in re.split(r"[/@]", raw))
        for candidate in (readable, dns_name(raw), dns_name(f"t-{raw}")):
            if _LABEL.match(candidate) and candidate not in self.used:
                self.used.add(candidate)
                return candidate
        n = 2
        while f"t{n}-{dns_name(raw)}"[:63] in self.used:  # bounded: each try adds a distinct name
            n += 1
        name = f"t{n}-{dns_name(raw)}"[:63].rstrip("-")
        self.used.add(name)
        return name


def plan_tasks(graph: ExecutionGraph) -> list[TaskPlan]:
    """The graph's tasks in node order, with their dependencies as task names."""
    groups: dict[str, list[Node]] = {}
    for node in graph.nodes:
        groups.setdefault(_group_key(node), []).append(node)
    names = _Names()
    tasks: list[TaskPlan] = []
    task_of: dict[str, TaskPlan] = {}
    for key, nodes in groups.items():
        if _is_script_like(nodes):
            raw = key.removeprefix("job:").removeprefix("node:")
            task = TaskPlan(names.take(raw), nodes)
            tasks.append(task)
            task_of.update((n.id, task) for n in nodes)
        else:
            for node in nodes:
                task = TaskPlan(names.take(node.id), [node])
                tasks.append(task)
                task_of[node.id] = task
    for task in tasks:
        seen: set[str] = set()
        for node in task.nodes:
            for need in node.needs:
                dep = task_of[need]
                if dep is not task and dep.name not in seen:
                    seen.add(dep.name)
                    task.deps.append(dep.name)
    return tasks
