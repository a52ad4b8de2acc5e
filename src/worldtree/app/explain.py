"""Why is this job pending? Every agent with the first reason it cannot take the job, and a summary.

Users of label-routed runners ask for this everywhere and no anchor has it: GitLab shows "This job
is stuck because you don't have any active runners that can run this job" with no detail per
runner; Buildkite shows nothing. Here each agent gets one line, the first that applies, in order:

1. the first term of the job's selector it fails (``gpu: missing``, ``cpu-cores: 4 is not > 8``)
   — a label never fixes itself, so it comes before passing states;
2. ``offline since <time>``;
3. ``draining`` (it finishes its jobs and takes no new ones);
4. ``busy 4/4``;
5. ``matches (2/4 busy)``: it can take the job.

:func:`explain_job` is pure (selector + agents -> lines), so the CLI, REST, gRPC and the console
render the same words; :func:`explain` resolves a job id against the store: a job id of
:mod:`worldtree.app.jobs` (``RUN_ID:build.compile``; a job's name or ``stage/job`` do too), or the
id of an agent job row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from worldtree.app.jobs import job_key as _job_key
from worldtree.app.jobs import parse_job_id, placement, resolve, state_of
from worldtree.app.service import _state
from worldtree.errors import UsageError
from worldtree.model.graph import ExecutionGraph, Node
from worldtree.model.labels import LabelSelector
from worldtree.model.states import TERMINAL, NodeState
from worldtree.store.agent_snapshots import AgentSnapshot, agent_job, agent_snapshots
from worldtree.store.api import RunStore
from worldtree.store.server_data import engine_of

__all__ = ["Line", "explain", "explain_job", "summarize"]

Verdict = Literal["mismatch", "offline", "draining", "busy", "matches"]


@dataclass(frozen=True)
class Line:
    """One agent's answer: ``verdict`` for programs, ``reason`` for people."""

    agent_id: str
    agent: str
    verdict: Verdict
    reason: str


def explain_job(selector: LabelSelector | None, agents: Sequence[AgentSnapshot]) -> list[Line]:
    """One line per agent, in the order given (see the module docstring for the precedence)."""
    out = []
    for a in agents:
        failed = selector.explain(a.labels) if selector is not None else None
        if failed is not None:
            verdict: Verdict = "mismatch"
            reason = failed
        elif a.status != "online":
            verdict, reason = "offline", f"offline since {_when(a.offline_since or a.last_seen)}"
        elif a.draining:
            verdict, reason = "draining", f"draining ({a.running}/{a.capacity} busy): takes no new jobs"
        elif a.running >= a.capacity:
            verdict, reason = "busy", f"busy {a.running}/{a.capacity}"
        else:
            verdict, reason = "matches", f"matches ({a.running}/{a.capacity} busy)"
        out.append(Line(agent_id=a.id, agent=a.name, verdict=verdict, reason=reason))
    return out


def summarize(selector: LabelSelector | None, lines: Sequence[Line]) -> str:
    """One line saying why a pending job waits, from the per-agent lines."""
    wanted = f"label selector {selector.describe()}" if selector is not None else "no label selector"
    if not lines:
        return f"no agent is registered ({wanted}); start one with `worldtree agent --server HOST:PORT`"
    count = {v: sum(1 for line in lines if line.verdict == v) for v in ("mismatch", "offline", "draining", "busy",
                                                                         "matches")}
    if count["matches"]:
        return (f"{count['matches']} matching agent(s) have a free slot; the job is next to be dispatched "
                "(or waits for jobs queued before it)")
    if count["mismatch"] == len(lines):
        return f"no agent matches the {wanted}: {len(lines)} agent(s), none with the labels asked for"
    parts = [f"{count[v]} {label}" for v, label in (("busy", "busy"), ("offline", "offline"),
                                                     ("draining", "draining")) if count[v]]
    tail = f"; {count['mismatch']} do not match" if count["mismatch"] else ""
    return f"every agent that matches the {wanted} is unavailable: {', '.join(parts)}{tail}"


def explain(store: RunStore, job_id: str) -> dict[str, Any]:
    """Resolve ``job_id`` and explain it: state, selector, summary and one line per agent.

    A job that is not pending (running, finished, or waiting for the jobs it ``needs``) says so in
    ``summary``; the agent lines are there all the same.
    """
    run_id, job = _split(store, job_id)
    record, graph, nodes = resolve(store, f"{run_id}:{job}")
    selector = nodes[0].selector
    states = {n.node: n.state for n in record.nodes}
    run_state = _state(record.state)
    state = state_of(record, nodes, placement(store, record))
    lines = explain_job(selector, _agents(store))
    if state not in ("queued", "pending"):
        summary = f"the job is not pending: it is {state}"
    else:
        waiting = _unfinished_needs(graph, nodes, states)
        summary = (f"the job waits for the jobs it needs: {', '.join(waiting)}" if waiting
                   else summarize(selector, lines))
    return {"job_id": f"{record.run_id}:{_job_key(nodes[0])}", "run_id": record.run_id, "job": nodes[0].job,
            "stage": nodes[0].stage, "state": state, "run_state": run_state,
            "selector": selector.model_dump() if selector is not None else None,
            "selector_text": selector.describe() if selector is not None else None,
            "summary": summary, "agents": [asdict(line) for line in lines]}


def _agents(store: RunStore) -> list[AgentSnapshot]:
    """Every agent, through the agents feature's ``list_agents`` (which first marks silent agents
    offline); straight from its tables while that feature is not installed."""
    try:
        from worldtree.app.agents import list_agents
    except ImportError:
        return agent_snapshots(engine_of(store))
    return [AgentSnapshot(id=a["id"], name=a["name"], labels=dict(a["labels"]),
                          status="online" if a["online"] else "offline", capacity=int(a["capacity"]),
                          running=int(a["running"]), draining=bool(a["draining"]),
                          last_seen=_parse(a.get("last_seen")), offline_since=_parse(a.get("offline_since")))
            for a in list_agents(store)]


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _split(store: RunStore, job_id: str) -> tuple[str, str]:
    try:
        return parse_job_id(job_id)
    except UsageError:
        ref = agent_job(engine_of(store), job_id)
        if ref is None:
            raise UsageError(f"job id {job_id!r}: write RUN_ID:JOB (e.g. 20261130-101500-abcde:build.compile), "
                             "or give the id of an agent job") from None
        return ref.run_id, ref.job


def _unfinished_needs(graph: ExecutionGraph, nodes: list[Node], states: dict[str, str]) -> list[str]:
    """Jobs outside this one whose nodes the job's first node needs and that are not finished."""
    by_id = graph.by_id()
    mine = {n.id for n in nodes}
    out = [_job_key(by_id[d]) if by_id[d].kind == "step" else d for d in nodes[0].needs
           if d not in mine and d in by_id and states.get(d, NodeState.PENDING) not in TERMINAL]
    return list(dict.fromkeys(out))


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "an unknown time"
