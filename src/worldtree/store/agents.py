"""Rows of the agents feature (migration 0005): agents, their jobs and tasks, the lines they sent.

:class:`AgentRows` takes the SQLAlchemy engine of a run store and does the row work every replica
shares through the database: registration and heartbeats, the claim of a job (a compare-and-set on
its state, so exactly one agent wins it, with a fencing token that grows with every claim), the
tasks of claimed jobs, fenced reports and log lines, and the sweep that turns silent agents
offline and their jobs ``lost``. What the rows mean (which agent matches, least-loaded choice,
engine outcomes) is :mod:`worldtree.app.agents`' job. Driver errors leave as StoreError.
"""

from __future__ import annotations

import json
import secrets as _secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from worldtree.errors import StoreError, UsageError
from worldtree.store.agents_tables import agent_jobs, agent_log_lines, agent_tasks, agents
from worldtree.store.api import RunStore
from worldtree.store.rows import clean
from worldtree.store.schema import reason, write_transaction

T = TypeVar("T")

#: task states that still wait for an agent's report
OPEN_TASK_STATES = ("queued", "sent")


def engine_of(store: RunStore) -> Engine:
    """The SQLAlchemy engine behind ``store`` (both store kinds expose it as ``_engine``)."""
    engine: Engine = store._engine  # type: ignore[attr-defined]
    return engine


def _now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}-{_secrets.token_hex(8)}"


@dataclass(frozen=True)
class AgentRow:
    id: str
    name: str
    labels: dict[str, str]
    capacity: int
    status: str
    draining: bool
    host: dict[str, Any]
    metrics: dict[str, Any]
    registered_at: datetime
    last_seen: datetime
    offline_since: datetime | None
    #: jobs this agent holds that have a task waiting or running (its load)
    running: int = 0


@dataclass(frozen=True)
class JobRow:
    id: str
    run_id: str
    attempt: int
    job: str
    selector: str | None
    graph: str
    state: str
    agent_id: str | None
    lease_token: int
    lease_until: datetime | None
    acked_line: int
    error: str | None


@dataclass(frozen=True)
class TaskRow:
    id: str
    job_id: str
    node: str
    command: str
    env: dict[str, str]
    purpose: str
    try_number: int
    workdir: str | None
    state: str
    stop_reason: str | None
    exit_code: int | None
    error: str | None
    stopped: bool


@dataclass(frozen=True)
class LineRow:
    line: int
    task_id: str
    stream: str
    content: str


def _agent(row: Any, running: int = 0) -> AgentRow:
    return AgentRow(row.id, row.name, json.loads(row.labels), row.capacity, row.status, bool(row.draining),
                    json.loads(row.host), json.loads(row.metrics or "{}"), row.registered_at, row.last_seen,
                    row.offline_since, running)


def _job(row: Any) -> JobRow:
    """A job row; ``graph`` is "" unless it was selected (only a claim hands it out)."""
    return JobRow(row.id, row.run_id, row.attempt, row.job, row.selector, getattr(row, "graph", ""), row.state,
                  row.agent_id, int(row.lease_token), row.lease_until, int(row.acked_line), row.error)


#: every column but the graph (a run's whole graph can be large; it is read once, by the claim)
_JOB_LIGHT = [c for c in agent_jobs.c if c.name != "graph"]


def _task(row: Any) -> TaskRow:
    return TaskRow(row.id, row.job_id, row.node, row.command, json.loads(row.env), row.purpose, row.try_number,
                   row.workdir, row.state, row.stop_reason, row.exit_code, row.error, bool(row.stopped))


class AgentRows:
    """Row work for agents; every method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        try:
            with write_transaction(self.engine) as conn:
                yield conn
        except IntegrityError:
            raise
        except DataError as exc:  # bad input (a NUL, a value too long): not "the store is away" (UNAVAILABLE)
            raise UsageError(f"agents: cannot {action}: {reason(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"agents: cannot {action}: {reason(exc)}") from exc

    def _read(self, action: str, body: Callable[[Connection], T]) -> T:
        try:
            with self.engine.connect() as conn:
                return body(conn)
        except DataError as exc:
            raise UsageError(f"agents: cannot {action}: {reason(exc)}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"agents: cannot {action}: {reason(exc)}") from exc

    # -- agents -----------------------------------------------------------------------------------
    def register(self, agent_id: str | None, *, name: str, labels: dict[str, str], capacity: int,
                 host: dict[str, Any], secret_hash: str, presented_hash: str | None = None) -> str:
        """Insert a new agent, or bring a known one (re-registering after a reconnect) back online.

        A known id is taken over only with its current secret (``presented_hash``) or when it has
        none (registered before 0010); otherwise the caller gets a new id: naming another agent's
        id with the shared token must not hand over that agent's identity and jobs.
        """
        now = _now()
        values = {"name": name, "labels": json.dumps(labels, sort_keys=True), "capacity": capacity,
                  "status": "online", "draining": 0, "host": json.dumps(host, sort_keys=True), "last_seen": now,
                  "offline_since": None, "secret_hash": secret_hash}
        with self._write("register an agent") as conn:
            if agent_id:
                row = conn.execute(select(agents.c.secret_hash).where(agents.c.id == agent_id)).first()
                if row is not None:
                    if row.secret_hash is None or (presented_hash is not None and _secrets.compare_digest(
                            row.secret_hash, presented_hash)):
                        conn.execute(update(agents).where(agents.c.id == agent_id).values(**values))
                        return agent_id
                    agent_id = None
            new = agent_id or new_id("agent")
            conn.execute(insert(agents).values(id=new, registered_at=now, metrics="{}", **values))
            return new

    def unregister(self, agent_id: str) -> bool:
        """Offline at once; the jobs it held are lost (their tasks fail as lost and are retried)."""
        now = _now()
        with self._write("unregister an agent") as conn:
            found = conn.execute(update(agents).where(agents.c.id == agent_id)
                                 .values(status="offline", offline_since=now)).rowcount
            conn.execute(update(agent_jobs).where(agent_jobs.c.agent_id == agent_id,
                                                  agent_jobs.c.state == "claimed")
                         .values(state="lost", error=f"agent {agent_id} unregistered"))
            return bool(found)

    def heartbeat(self, agent_id: str, *, metrics: dict[str, Any] | None, labels: dict[str, str] | None,
                  leases: list[tuple[str, int]], lease_seconds: float,
                  draining: bool | None = None) -> list[str] | None:
        """Mark the agent seen and renew the leases it presents; the job ids it no longer holds.

        None when the agent is unknown (it must register again).
        """
        now = _now()
        until = now + timedelta(seconds=lease_seconds)
        with self._write("record a heartbeat") as conn:
            row = conn.execute(select(agents.c.labels).where(agents.c.id == agent_id)).first()
            if row is None:
                return None
            values: dict[str, Any] = {"last_seen": now, "status": "online", "offline_since": None}
            if metrics is not None:
                values["metrics"] = json.dumps(metrics, sort_keys=True)
            if labels:
                values["labels"] = json.dumps({**json.loads(row.labels), **labels}, sort_keys=True)
            if draining is not None:
                values["draining"] = int(draining)
            conn.execute(update(agents).where(agents.c.id == agent_id).values(**values))
            if not leases:
                return []
            # one statement for every lease (an agent may hold hundreds of idle jobs of a big run)
            ids = [job_id for job_id, _ in leases]
            held = (agent_jobs.c.id.in_(ids), agent_jobs.c.agent_id == agent_id, agent_jobs.c.state == "claimed")
            conn.execute(update(agent_jobs).where(*held).values(lease_until=until))
            granted = {(r.id, int(r.lease_token)) for r in conn.execute(
                select(agent_jobs.c.id, agent_jobs.c.lease_token).where(*held))}
            return [job_id for job_id, token in leases if (job_id, token) not in granted]

    def update_labels(self, agent_id: str, labels: dict[str, str], *, merge: bool) -> dict[str, str] | None:
        with self._write("update an agent's labels") as conn:
            row = conn.execute(select(agents.c.labels).where(agents.c.id == agent_id)).first()
            if row is None:
                return None
            new = {**json.loads(row.labels), **labels} if merge else dict(labels)
            conn.execute(update(agents).where(agents.c.id == agent_id)
                         .values(labels=json.dumps(new, sort_keys=True)))
            return new

    def set_draining(self, agent_id: str, draining: bool = True) -> bool:
        with self._write("drain an agent") as conn:
            return bool(conn.execute(update(agents).where(agents.c.id == agent_id)
                                     .values(draining=int(draining))).rowcount)

    def _running(self, conn: Connection) -> dict[str, int]:
        busy = (select(agent_jobs.c.agent_id, func.count(func.distinct(agent_jobs.c.id)))
                .join(agent_tasks, agent_tasks.c.job_id == agent_jobs.c.id)
                .where(agent_jobs.c.state == "claimed", agent_tasks.c.state.in_(OPEN_TASK_STATES))
                .group_by(agent_jobs.c.agent_id))
        return {agent: int(n) for agent, n in conn.execute(busy)}

    def all_agents(self) -> list[AgentRow]:
        def body(conn: Connection) -> list[AgentRow]:
            running = self._running(conn)
            rows = conn.execute(select(agents).order_by(agents.c.name, agents.c.id))
            return [_agent(r, running.get(r.id, 0)) for r in rows]
        return self._read("list agents", body)

    def secret_hash(self, agent_id: str) -> tuple[bool, str | None]:
        """(whether the agent is known, the digest of its session secret or None)."""
        def body(conn: Connection) -> tuple[bool, str | None]:
            row = conn.execute(select(agents.c.secret_hash).where(agents.c.id == agent_id)).first()
            return (False, None) if row is None else (True, row.secret_hash)
        return self._read("read an agent's secret", body)

    def get(self, agent_id: str) -> AgentRow | None:
        def body(conn: Connection) -> AgentRow | None:
            row = conn.execute(select(agents).where(agents.c.id == agent_id)).first()
            return None if row is None else _agent(row, self._running(conn).get(agent_id, 0))
        return self._read("read an agent", body)

    def sweep(self, *, offline_after: float) -> tuple[list[str], list[str]]:
        """Agents silent for ``offline_after`` s go offline; claimed jobs whose lease ended are lost.

        Returns (agents turned offline, jobs lost). Any replica may run it; it is idempotent.
        """
        now = _now()
        with self._write("sweep agents") as conn:
            silent = [r.id for r in conn.execute(select(agents.c.id).where(
                agents.c.status == "online", agents.c.last_seen < now - timedelta(seconds=offline_after)))]
            if silent:
                conn.execute(update(agents).where(agents.c.id.in_(silent), agents.c.status == "online")
                             .values(status="offline", offline_since=now))
            lost = [r.id for r in conn.execute(select(agent_jobs.c.id).where(
                agent_jobs.c.state == "claimed", agent_jobs.c.lease_until < now))]
            if lost:
                conn.execute(update(agent_jobs).where(agent_jobs.c.id.in_(lost), agent_jobs.c.state == "claimed",
                                                      agent_jobs.c.lease_until < now)
                             .values(state="lost", error="its agent stopped renewing the lease"))
            return silent, lost

    # -- jobs and tasks (coordinator side) ---------------------------------------------------------
    def create_job(self, *, run_id: str, attempt: int, job: str, selector: str | None, graph: str) -> str:
        job_id = new_id("job")
        with self._write("queue an agent job") as conn:
            conn.execute(insert(agent_jobs).values(id=job_id, run_id=run_id, attempt=attempt, job=job,
                                                   selector=selector, graph=graph, state="queued",
                                                   lease_token=0, acked_line=0, created_at=_now()))
        return job_id

    def add_task(self, job_id: str, *, node: str, command: str, env: dict[str, str], purpose: str,
                 try_number: int, workdir: str | None) -> str:
        task_id = new_id("task")
        with self._write("queue an agent task") as conn:
            conn.execute(insert(agent_tasks).values(
                id=task_id, job_id=job_id, node=node, command=command, env=json.dumps(env), purpose=purpose,
                try_number=try_number, workdir=workdir, state="queued", stopped=0, created_at=_now()))
        return task_id

    def job(self, job_id: str) -> JobRow | None:
        def body(conn: Connection) -> JobRow | None:
            row = conn.execute(select(*_JOB_LIGHT).where(agent_jobs.c.id == job_id)).first()
            return None if row is None else _job(row)
        return self._read("read an agent job", body)

    def jobs(self, *, run_id: str | None = None, states: tuple[str, ...] | None = None) -> list[JobRow]:
        def body(conn: Connection) -> list[JobRow]:
            query = select(*_JOB_LIGHT).order_by(agent_jobs.c.created_at)
            if run_id is not None:
                query = query.where(agent_jobs.c.run_id == run_id)
            if states is not None:
                query = query.where(agent_jobs.c.state.in_(states))
            return [_job(r) for r in conn.execute(query)]
        return self._read("list agent jobs", body)

    def task(self, task_id: str) -> TaskRow | None:
        def body(conn: Connection) -> TaskRow | None:
            row = conn.execute(select(agent_tasks).where(agent_tasks.c.id == task_id)).first()
            return None if row is None else _task(row)
        return self._read("read an agent task", body)

    def poll(self, task_id: str, job_id: str, after_line: int) -> tuple[TaskRow | None, JobRow | None, list[LineRow]]:
        """One look for the coordinator: the task, its job, and the job's lines after ``after_line``."""
        def body(conn: Connection) -> tuple[TaskRow | None, JobRow | None, list[LineRow]]:
            trow = conn.execute(select(agent_tasks).where(agent_tasks.c.id == task_id)).first()
            jrow = conn.execute(select(*_JOB_LIGHT).where(agent_jobs.c.id == job_id)).first()
            upto = int(jrow.acked_line) if jrow is not None else 0  # lines after a gap wait for the gap
            lines = conn.execute(select(agent_log_lines.c.line, agent_log_lines.c.task_id, agent_log_lines.c.stream,
                                        agent_log_lines.c.content)
                                 .where(agent_log_lines.c.job_id == job_id, agent_log_lines.c.line > after_line,
                                        agent_log_lines.c.line <= upto)
                                 .order_by(agent_log_lines.c.line))
            return (None if trow is None else _task(trow), None if jrow is None else _job(jrow),
                    [LineRow(int(r.line), r.task_id, r.stream, r.content) for r in lines])
        return self._read("poll an agent task", body)

    def request_stop(self, task_id: str, why: str, job_id: str | None = None) -> bool:
        """Ask for a stop; False when there is no such task (of ``job_id``, when given)."""
        with self._write("stop an agent task") as conn:
            known = select(agent_tasks.c.id).where(agent_tasks.c.id == task_id)
            if job_id:
                known = known.where(agent_tasks.c.job_id == job_id)
            if conn.execute(known).first() is None:
                return False
            conn.execute(update(agent_tasks).where(agent_tasks.c.id == task_id,
                                                   agent_tasks.c.state.in_(OPEN_TASK_STATES),
                                                   agent_tasks.c.stop_reason.is_(None)).values(stop_reason=why))
            return True

    def abandon_task(self, task_id: str, error: str) -> None:
        """The coordinator gave up on a task (its job was lost): a late report of it changes nothing."""
        with self._write("abandon an agent task") as conn:
            conn.execute(update(agent_tasks).where(agent_tasks.c.id == task_id,
                                                   agent_tasks.c.state.in_(OPEN_TASK_STATES))
                         .values(state="done", error=error, finished_at=_now()))

    def finish_jobs(self, run_id: str, attempt: int) -> None:
        """The run attempt ended: its jobs are done (agents clean their workspaces)."""
        with self._write("finish agent jobs") as conn:
            conn.execute(update(agent_jobs).where(agent_jobs.c.run_id == run_id, agent_jobs.c.attempt == attempt,
                                                  agent_jobs.c.state.in_(("queued", "claimed")))
                         .values(state="done"))

    def finish_job(self, job_id: str) -> None:
        """No step of this job runs any more: its agent drops it and cleans its workspace."""
        with self._write("finish an agent job") as conn:
            conn.execute(update(agent_jobs).where(agent_jobs.c.id == job_id,
                                                  agent_jobs.c.state.in_(("queued", "claimed")))
                         .values(state="done"))

    def end_older_attempts(self, run_id: str, attempt: int) -> int:
        """A new attempt took the run over: the jobs of earlier attempts are done (their agents stop them)."""
        with self._write("end earlier attempts' agent jobs") as conn:
            return int(conn.execute(update(agent_jobs).where(
                agent_jobs.c.run_id == run_id, agent_jobs.c.attempt < attempt,
                agent_jobs.c.state.in_(("queued", "claimed"))).values(state="done")).rowcount)

    # -- agent side ---------------------------------------------------------------------------------
    def claimable(self, limit: int = 50) -> list[JobRow]:
        """Queued jobs, oldest first (the caller filters by selector and claims)."""
        def body(conn: Connection) -> list[JobRow]:
            query = (select(*_JOB_LIGHT).where(agent_jobs.c.state == "queued")
                     .order_by(agent_jobs.c.created_at).limit(limit))
            return [_job(r) for r in conn.execute(query)]
        return self._read("list queued agent jobs", body)

    def claim(self, job_id: str, agent_id: str, lease_seconds: float) -> JobRow | None:
        """Compare-and-set queued -> claimed; the claimed row (with its new token) or None if lost."""
        now = _now()
        with self._write("claim an agent job") as conn:
            won = conn.execute(update(agent_jobs).where(agent_jobs.c.id == job_id, agent_jobs.c.state == "queued")
                               .values(state="claimed", agent_id=agent_id, claimed_at=now,
                                       lease_token=agent_jobs.c.lease_token + 1,
                                       lease_until=now + timedelta(seconds=lease_seconds))).rowcount
            if not won:
                return None
            row = conn.execute(select(agent_jobs).where(agent_jobs.c.id == job_id)).first()
            return None if row is None else _job(row)

    def deliver(self, agent_id: str) -> tuple[list[tuple[TaskRow, JobRow]], list[str], list[str]]:
        """For ``agent_id``: its queued tasks (now ``sent``), tasks to stop, and its jobs that ended."""
        with self._write("deliver agent tasks") as conn:
            rows = conn.execute(select(agent_tasks, agent_jobs.c.lease_token.label("j_token"))
                                .join(agent_jobs, agent_tasks.c.job_id == agent_jobs.c.id)
                                .where(agent_jobs.c.agent_id == agent_id, agent_jobs.c.state == "claimed",
                                       agent_tasks.c.state == "queued")
                                .order_by(agent_tasks.c.created_at)).all()
            out: list[tuple[TaskRow, JobRow]] = []
            jobs: dict[str, JobRow] = {}
            for row in rows:
                conn.execute(update(agent_tasks).where(agent_tasks.c.id == row.id, agent_tasks.c.state == "queued")
                             .values(state="sent"))
                if row.job_id not in jobs:
                    jrow = conn.execute(select(*_JOB_LIGHT).where(agent_jobs.c.id == row.job_id)).first()
                    jobs[row.job_id] = _job(jrow)
                out.append((_task(row), jobs[row.job_id]))
            stops = [r.id for r in conn.execute(
                select(agent_tasks.c.id).join(agent_jobs, agent_tasks.c.job_id == agent_jobs.c.id)
                .where(agent_jobs.c.agent_id == agent_id, agent_tasks.c.state == "sent",
                       agent_tasks.c.stop_reason.is_not(None)))]
            return out, stops, []

    def ended_jobs(self, agent_id: str, job_ids: list[str]) -> list[str]:
        """Of ``job_ids`` the agent holds, those that are no longer claimed by it (done, lost, taken)."""
        if not job_ids:
            return []

        def body(conn: Connection) -> list[str]:
            held = {r.id for r in conn.execute(select(agent_jobs.c.id).where(
                agent_jobs.c.id.in_(job_ids), agent_jobs.c.agent_id == agent_id, agent_jobs.c.state == "claimed"))}
            return [j for j in job_ids if j not in held]
        return self._read("read agent jobs", body)

    def _fenced(self, conn: Connection, agent_id: str, job_id: str, token: int) -> bool:
        return conn.execute(select(agent_jobs.c.id).where(
            agent_jobs.c.id == job_id, agent_jobs.c.agent_id == agent_id, agent_jobs.c.lease_token == token,
            agent_jobs.c.state == "claimed")).first() is not None

    def report(self, agent_id: str, job_id: str, token: int, task_id: str, *, exit_code: int | None,
               error: str | None, stopped: bool) -> bool:
        """Record a task's end; False (nothing written) when the agent's lease on the job is stale."""
        with self._write("record an agent task's end") as conn:
            if not self._fenced(conn, agent_id, job_id, token):
                return False
            return bool(conn.execute(update(agent_tasks).where(
                agent_tasks.c.id == task_id, agent_tasks.c.job_id == job_id,
                agent_tasks.c.state.in_(OPEN_TASK_STATES))
                .values(state="done", exit_code=exit_code, error=error, stopped=int(stopped),
                        finished_at=_now())).rowcount)

    def append_lines(self, agent_id: str, job_id: str, token: int,
                     lines: list[tuple[int, str, str, str]]) -> int | None:
        """Store lines (line number, task id, stream, text) past the acknowledged one; the new ack.

        None when the lease is stale. The ack is the highest CONTIGUOUS line stored: lines after a
        gap are stored but the ack stays below the gap, so the agent resends from there (a batch
        13..15 after ack 10 leaves the ack at 10 until 11..12 come). Lines already stored (at or
        below the ack, or after a gap) are a resend and dropped: one row per (job, line number).
        """
        now = _now()
        with self._write("store agent log lines") as conn:
            if not self._fenced(conn, agent_id, job_id, token):
                return None
            acked = int(conn.execute(select(agent_jobs.c.acked_line).where(agent_jobs.c.id == job_id)).scalar_one())
            # clean: a step that prints a NUL byte made PostgreSQL refuse the batch, and the agent resent it
            # forever (the run stayed running); one row per line number (a repeat broke the primary key)
            fresh = sorted({n: (n, t, s, clean(c)) for n, t, s, c in lines if n > acked}.values())
            if fresh:
                stored = {int(r.line) for r in conn.execute(select(agent_log_lines.c.line).where(
                    agent_log_lines.c.job_id == job_id, agent_log_lines.c.line.in_([f[0] for f in fresh])))}
                fresh = [f for f in fresh if f[0] not in stored]
            if fresh:
                conn.execute(insert(agent_log_lines), [
                    {"job_id": job_id, "line": n, "task_id": t, "stream": s, "content": c, "at": now}
                    for n, t, s, c in fresh])
                contiguous = acked
                for (line,) in conn.execute(select(agent_log_lines.c.line).where(
                        agent_log_lines.c.job_id == job_id, agent_log_lines.c.line > acked)
                        .order_by(agent_log_lines.c.line)):
                    if int(line) != contiguous + 1:
                        break
                    contiguous += 1
                if contiguous != acked:
                    acked = contiguous
                    conn.execute(update(agent_jobs).where(agent_jobs.c.id == job_id).values(acked_line=acked))
            return acked

    def lines(self, job_id: str, after: int = 0, limit: int = 1000) -> list[LineRow]:
        def body(conn: Connection) -> list[LineRow]:
            acked = select(agent_jobs.c.acked_line).where(agent_jobs.c.id == job_id).scalar_subquery()
            rows = conn.execute(select(agent_log_lines).where(agent_log_lines.c.job_id == job_id,
                                                              agent_log_lines.c.line > after,
                                                              agent_log_lines.c.line <= acked)
                                .order_by(agent_log_lines.c.line).limit(limit))
            return [LineRow(int(r.line), r.task_id, r.stream, r.content) for r in rows]
        return self._read("read agent log lines", body)


__all__ = ["AgentRow", "AgentRows", "JobRow", "LineRow", "TaskRow", "engine_of", "new_id"]
