"""Read-only views of the agents tables (migration 0005) for "why is this job pending".

The agents feature owns those tables and writes them (``store/agents*.py``); this module only
reads the few columns an explanation needs, so ``app.explain`` does not depend on how agents are
registered or leased. Driver errors leave as :class:`~worldtree.errors.StoreError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from worldtree.errors import StoreError
from worldtree.store.agents_tables import agent_jobs, agents

__all__ = ["AgentJobRef", "AgentSnapshot", "Placement", "agent_job", "agent_snapshots", "placement"]

#: ``agent_jobs.state`` values during which the job holds one slot of its agent's capacity
_HOLDING = ("claimed",)
#: ``agent_jobs.state`` values of a job handed to agents that no agent holds
_WAITING = ("queued", "lost")


@dataclass(frozen=True)
class AgentSnapshot:
    """One agent as an explanation sees it."""

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    status: str = "online"  # online | offline
    capacity: int = 1
    running: int = 0
    draining: bool = False
    last_seen: datetime | None = None
    offline_since: datetime | None = None


@dataclass(frozen=True)
class AgentJobRef:
    """An ``agent_jobs`` row: which run and job it is, and whether an agent holds it."""

    id: str
    run_id: str
    job: str
    state: str
    agent_id: str | None
    selector_json: str | None


def agent_snapshots(engine: Engine) -> list[AgentSnapshot]:
    """Every registered agent with the number of jobs it holds, by name."""
    try:
        with engine.connect() as conn:
            held: dict[str, int] = dict(conn.execute(
                select(agent_jobs.c.agent_id, func.count())
                .where(agent_jobs.c.state.in_(_HOLDING), agent_jobs.c.agent_id.is_not(None))
                .group_by(agent_jobs.c.agent_id)).all())
            rows = conn.execute(select(agents).order_by(agents.c.name, agents.c.id)).mappings().all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the agents: {exc.__class__.__name__}: {exc}") from None
    return [AgentSnapshot(id=r["id"], name=r["name"], labels=_labels(r["labels"]), status=r["status"],
                          capacity=int(r["capacity"]), running=int(held.get(r["id"], 0)), draining=bool(r["draining"]),
                          last_seen=r["last_seen"], offline_since=r["offline_since"]) for r in rows]


def agent_job(engine: Engine, job_id: str) -> AgentJobRef | None:
    """The ``agent_jobs`` row with this id, or None."""
    try:
        with engine.connect() as conn:
            row = conn.execute(select(agent_jobs.c.id, agent_jobs.c.run_id, agent_jobs.c.job, agent_jobs.c.state,
                                      agent_jobs.c.agent_id, agent_jobs.c.selector)
                               .where(agent_jobs.c.id == job_id)).first()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read agent job {job_id!r}: {exc.__class__.__name__}: {exc}") from None
    if row is None:
        return None
    return AgentJobRef(id=row[0], run_id=row[1], job=row[2], state=row[3], agent_id=row[4], selector_json=row[5])


def _labels(text: str) -> dict[str, str]:
    try:
        data: Any = json.loads(text or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}



@dataclass(frozen=True)
class Placement:
    """Where one attempt of a run stands with executors and agents."""

    #: each claimed node's owner: an agent's name when an agent claimed it, else ``pid@host``
    owners: dict[str, str] = field(default_factory=dict)
    #: the owner of the attempt (the executor driving the run)
    attempt_owner: str | None = None
    #: names of the jobs handed to agents that no agent holds yet (queued, or lost with their agent)
    waiting: frozenset[str] = frozenset()


def placement(engine: Engine, run_id: str, attempt: int) -> Placement:
    """Who runs what in one attempt of a run, in one read."""
    from worldtree.store.tables import attempts, node_states

    try:
        with engine.connect() as conn:
            rows = conn.execute(select(node_states.c.node, node_states.c.owner).where(
                node_states.c.run_id == run_id, node_states.c.attempt == attempt,
                node_states.c.owner.is_not(None))).all()
            owner = conn.execute(select(attempts.c.owner).where(attempts.c.run_id == run_id,
                                                                 attempts.c.number == attempt)).scalar()
            waiting = frozenset(str(j) for j in conn.execute(select(agent_jobs.c.job).where(
                agent_jobs.c.run_id == run_id, agent_jobs.c.attempt == attempt,
                agent_jobs.c.state.in_(_WAITING))).scalars())
            ids = {str(r[1]) for r in rows}
            names = dict(conn.execute(select(agents.c.id, agents.c.name).where(agents.c.id.in_(ids))).all()) \
                if ids else {}
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read who runs run {run_id}: {exc.__class__.__name__}: {exc}") from None
    return Placement(owners={str(node): str(names.get(o, o)) for node, o in rows}, attempt_owner=owner,
                     waiting=waiting)
