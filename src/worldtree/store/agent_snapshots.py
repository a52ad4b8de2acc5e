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

__all__ = ["AgentJobRef", "AgentSnapshot", "agent_job", "agent_snapshots", "job_owners"]

#: ``agent_jobs.state`` values during which the job holds one slot of its agent's capacity
_HOLDING = ("claimed",)


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



def job_owners(engine: Engine, run_id: str, attempt: int, nodes: list[str]) -> tuple[list[str], str | None]:
    """Who ran a job: the owners of its nodes' claims (an agent's name, or ``pid@host``) in node
    order, and the owner of the run's attempt (the executor that drove it)."""
    from worldtree.store.tables import attempts, node_states

    try:
        with engine.connect() as conn:
            rows = dict(conn.execute(select(node_states.c.node, node_states.c.owner).where(
                node_states.c.run_id == run_id, node_states.c.attempt == attempt,
                node_states.c.node.in_(nodes))).all())
            owner = conn.execute(select(attempts.c.owner).where(attempts.c.run_id == run_id,
                                                                 attempts.c.number == attempt)).scalar()
            names = dict(conn.execute(select(agents.c.id, agents.c.name)).all())
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read who ran run {run_id}: {exc.__class__.__name__}: {exc}") from None
    found = [str(rows[n]) for n in nodes if rows.get(n)]
    return [str(names.get(o, o)) for o in found], owner
