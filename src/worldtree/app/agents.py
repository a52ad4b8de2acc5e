"""Agents: the application functions behind AgentService, REST and the CLI, and the coordinator side.

An agent registers, heartbeats (renewing the leases of the jobs it holds), claims JOBS whose label
selector matches it and runs their TASKS. The run itself stays with the server's executor: its
one :class:`~worldtree.engine.machine.Machine` decides every try, timeout, retry and cancel exactly
as for a local run. Only the execution of a node's command is routed: :func:`backend_factory`
gives the executor's ``LocalDispatcher`` a backend that, for a node that must run on an agent
(its job has a selector, or the server runs every job on agents), queues an ``agent_tasks`` row
for the node's job and waits for the agent's report, forwarding the lines the agent sent to the
run's log on the way. A cancel or timeout becomes a stop request the agent sees at its next fetch
(the long-poll is woken at once in this process). When the job's agent stops renewing its lease,
the task ends as an error (the machine's "lost" semantics: a failed try, retried per ``retry``);
the next try creates a new agent job that another matching agent claims. Late reports from the
lost agent are refused by the fencing token.

Everything here goes through :class:`~worldtree.store.agents.AgentRows`, so replicas share it;
the wake-ups (:data:`BELL`) are per process and only make things faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from worldtree.errors import BackendError, UsageError
from worldtree.model.labels import LabelSelector
from worldtree.store.agents import AgentRow, AgentRows, JobRow, TaskRow, engine_of

if TYPE_CHECKING:
    from worldtree.backends.base import Backend, OutputSink, RunContext, StepRequest
    from worldtree.model.graph import ExecutionGraph, Node
    from worldtree.store.api import RunStore

#: The wire protocol this server speaks (``RegisterRequest.protocol_version``).
PROTOCOL_VERSION = 1


class ProtocolMismatch(UsageError):
    """An agent speaking another protocol version registered."""


class NotThisAgent(PermissionError):
    """A call named an agent without that agent's session secret (PERMISSION_DENIED)."""


def _digest(secret: str) -> str:
    """What is stored of a session secret: its SHA-256 (a random 256-bit value needs no slow hash)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_secret(store: RunStore, agent_id: str, secret: str | None) -> None:
    """Refuse a call naming ``agent_id`` unless it carries that agent's session secret.

    LookupError for an unknown agent (it registers again); :class:`NotThisAgent` for a missing or
    wrong secret, or an agent the server holds no secret for (registered before 0010: register again).
    """
    known, stored = rows_of(store).secret_hash(agent_id)
    if not known:
        raise LookupError(f"no agent {agent_id}: register again")
    if not secret:
        raise NotThisAgent(f"no session secret for agent {agent_id}: send the one Register returned as "
                           f"`{SECRET_METADATA}` metadata (register again if it is lost)")
    if stored is None or not secrets.compare_digest(stored, _digest(secret)):
        raise NotThisAgent(f"the session secret does not match agent {agent_id}: only the agent that "
                           "registered with this id may act for it (register again for a new secret)")


#: the gRPC metadata key carrying an agent's session secret
SECRET_METADATA = "x-worldtree-agent-secret"


@dataclass
class AgentSettings:
    """Timing of agents; env ``WORLDTREE_AGENT_*`` (tests use short ones)."""

    heartbeat_seconds: float = 10.0
    #: missed heartbeats before an agent counts as offline and its leases lapse
    missed_heartbeats: int = 3
    #: ``agents``: every job runs on an agent; ``auto``: only jobs with a selector do
    jobs_on: Literal["auto", "agents"] = "auto"
    #: how often a waiting step looks at its task (lines, outcome) without a wake-up from this process
    poll_seconds: float = 0.25

    @property
    def lease_seconds(self) -> float:
        return self.heartbeat_seconds * self.missed_heartbeats

    @classmethod
    def from_env(cls) -> AgentSettings:
        env = os.environ
        jobs_on = env.get("WORLDTREE_JOBS_ON", "auto").strip().lower() or "auto"
        if jobs_on not in ("auto", "agents"):
            raise UsageError(f"WORLDTREE_JOBS_ON={jobs_on!r}: expected auto or agents")
        return cls(heartbeat_seconds=float(env.get("WORLDTREE_AGENT_HEARTBEAT_SECONDS", "10")),
                   missed_heartbeats=int(env.get("WORLDTREE_AGENT_MISSED_HEARTBEATS", "3")),
                   jobs_on="agents" if jobs_on == "agents" else "auto")


class Bell:
    """Wakes, in this process, long-polling fetches (threads) and waiting steps (asyncio) when work,
    a stop request, a report or log lines appear. Only a speed-up: every waiter also looks again
    on its own within a bounded time (other replicas do not ring this bell)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._gen = 0
        self._async: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def ring(self) -> None:
        with self._cond:
            self._gen += 1
            self._cond.notify_all()
            waiters = list(self._async)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # a loop that closed meanwhile
                loop.call_soon_threadsafe(event.set)

    async def wait_async(self, timeout: float) -> None:
        """Until the next ring or ``timeout`` seconds, on the running loop."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._cond:
            self._async.add(entry)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry[1].wait(), timeout)
        finally:
            with self._cond:
                self._async.discard(entry)

    def generation(self) -> int:
        with self._cond:
            return self._gen

    def wait(self, seen: int, timeout: float) -> None:
        with self._cond:
            if self._gen == seen:
                self._cond.wait(timeout)


BELL = Bell()
#: Secret values of queued tasks, handed to the agent with the task and never stored.
_TASK_SECRETS: dict[str, dict[str, str]] = {}
#: The server's secret store (names -> values), for a task another replica queued: its values
#: live only in that replica's memory, so the replica serving the agent resolves them again.
_SECRET_STORE: list[Callable[[list[str]], dict[str, str]]] = []


def use_secret_store(resolve: Callable[[list[str]], dict[str, str]] | None) -> None:
    """Install (or, with None, remove) the server's secret store for :func:`fetch` (``worldtree server``)."""
    _SECRET_STORE[:] = [resolve] if resolve is not None else []


def _task_secrets(store: RunStore, task: TaskRow, job: JobRow, graphs: dict[str, Any]) -> dict[str, str]:
    """The secrets handed with ``task``: this process queued it (memory), or the secret store has them."""
    held = _TASK_SECRETS.pop(task.id, None)
    if held is not None or not _SECRET_STORE:
        return held or {}
    from worldtree.app.secrets import literal_credentials
    from worldtree.model.graph import ExecutionGraph

    graph = graphs.get(job.run_id)
    if graph is None:
        record = store.get_run(job.run_id)
        if record is None:
            return {}
        graph = graphs[job.run_id] = ExecutionGraph.model_validate_json(record.graph_json)
    node = next((n for n in graph.nodes if n.id == task.node), None)
    if node is None:
        return {}
    values = _SECRET_STORE[0](list(node.secrets)) if node.secrets else {}
    out = {name: values[name] for name in node.secrets if name in values}
    out.update({f"__mask_{i}": v for i, v in enumerate([*values.values(), *literal_credentials(graph)])})
    return out


def rows_of(store: RunStore) -> AgentRows:
    return AgentRows(engine_of(store))


# -- application functions (AgentService, REST, CLI) --------------------------------------------------
def register(store: RunStore, *, protocol_version: int, agent_id: str | None, name: str,
             labels: dict[str, str], capacity: int, host: dict[str, Any],
             settings: AgentSettings | None = None, secret: str | None = None) -> dict[str, Any]:
    """Register; the answer carries a new session secret (only its digest is stored).

    ``secret`` is the one the caller holds from an earlier registration: with it a known
    ``agent_id`` is kept (a reconnect); without it that id is not taken over and a new one is given.
    """
    settings = settings or AgentSettings.from_env()
    if protocol_version != PROTOCOL_VERSION:
        raise ProtocolMismatch(f"agent speaks protocol version {protocol_version}, this server speaks "
                               f"{PROTOCOL_VERSION}; run a worldtree agent of the server's version "
                               f"(server {_version()})")
    if capacity < 1:
        raise UsageError(f"capacity must be at least 1, got {capacity}")
    # checked here: the store refused them as a "store error" (UNAVAILABLE), so the agent retried forever
    if len(name) > 200 or not name.isprintable():
        raise UsageError(f"agent name {name[:40]!r}...: at most 200 printable characters; pick another --name")
    if agent_id and (len(agent_id) > 40 or not agent_id.isprintable()):
        raise UsageError(f"agent id {agent_id[:40]!r}: not an id this server gives; register without one")
    _check_labels(labels)
    issued = secrets.token_urlsafe(32)
    new = rows_of(store).register(agent_id or None, name=name, labels=labels, capacity=capacity, host=host,
                                  secret_hash=_digest(issued), presented_hash=_digest(secret) if secret else None)
    BELL.ring()
    return {"agent_id": new, "heartbeat_interval_seconds": settings.heartbeat_seconds,
            "lease_seconds": settings.lease_seconds, "labels": labels, "session_secret": issued}


def _version() -> str:
    from worldtree import __version__

    return __version__


def _check_labels(labels: dict[str, str]) -> None:
    from worldtree.model.labels import parse_labels

    for key, value in labels.items():
        if "," in value or "=" in key:
            raise UsageError(f"label {key}={value}: keys hold no '=' and values no ','")
    if labels:
        parse_labels(",".join(f"{k}={v}" for k, v in labels.items()))


def unregister(store: RunStore, agent_id: str) -> bool:
    found = rows_of(store).unregister(agent_id)
    BELL.ring()
    return found


def heartbeat(store: RunStore, agent_id: str, *, metrics: dict[str, Any] | None = None,
              labels: dict[str, str] | None = None, leases: list[tuple[str, int]] | None = None,
              draining: bool | None = None, settings: AgentSettings | None = None) -> list[str] | None:
    """Renew; the job ids the agent no longer holds (None: unknown agent, register again)."""
    settings = settings or AgentSettings.from_env()
    if labels:
        _check_labels(labels)  # as Register and UpdateLabels do ('a b' was merged in unchecked)
    rows = rows_of(store)
    revoked = rows.heartbeat(agent_id, metrics=metrics, labels=labels or None, leases=leases or [],
                             lease_seconds=settings.lease_seconds, draining=draining)
    _sweep(rows, settings)
    return revoked


def update_labels(store: RunStore, agent_id: str, labels: dict[str, str], *, merge: bool) -> dict[str, str]:
    _check_labels(labels)
    new = rows_of(store).update_labels(agent_id, labels, merge=merge)
    if new is None:
        raise LookupError(f"no agent {agent_id}")
    BELL.ring()
    return new


def drain(store: RunStore, agent_id: str) -> dict[str, Any]:
    """The agent finishes what it runs and takes no new job (until it registers again)."""
    if not rows_of(store).set_draining(agent_id, True):
        raise LookupError(f"no agent {agent_id}")
    return get_agent(store, agent_id)


def view(row: AgentRow) -> dict[str, Any]:
    status = row.status
    if status == "online":
        status = "busy" if row.running >= row.capacity else "idle"
    return {"id": row.id, "name": row.name, "status": status, "online": row.status == "online",
            "labels": row.labels, "capacity": row.capacity, "running": row.running, "draining": row.draining,
            "host": row.host, "metrics": row.metrics, "registered_at": row.registered_at.isoformat(),
            "last_seen": row.last_seen.isoformat(),
            "offline_since": row.offline_since.isoformat() if row.offline_since else None}


def list_agents(store: RunStore) -> list[dict[str, Any]]:
    """Every agent with what ``worldtree agents explain`` needs: labels, status, capacity, running, last_seen."""
    rows = rows_of(store)
    _sweep(rows, AgentSettings.from_env())
    return [view(r) for r in rows.all_agents()]


def get_agent(store: RunStore, agent_id: str) -> dict[str, Any]:
    row = rows_of(store).get(agent_id)
    if row is None:
        raise LookupError(f"no agent {agent_id}")
    return view(row)


@dataclass
class Fetched:
    """What a fetch hands the agent: new jobs, tasks to start, tasks to stop, jobs that ended."""

    jobs: list[JobRow] = field(default_factory=list)
    tasks: list[tuple[TaskRow, JobRow, dict[str, str]]] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.jobs or self.tasks or self.stop or self.ended)


_last_sweep = [0.0]


def _sweep(rows: AgentRows, settings: AgentSettings, every: float = 0.5) -> None:
    now = time.monotonic()
    if now - _last_sweep[0] < every:
        return
    _last_sweep[0] = now
    silent, lost = rows.sweep(offline_after=settings.lease_seconds)
    if silent or lost:
        BELL.ring()


def fetch(store: RunStore, agent_id: str, *, max_jobs: int, wait_seconds: float, held: list[str],
          settings: AgentSettings | None = None) -> Fetched:
    """Claim matching jobs (least loaded first) and collect this agent's tasks; long-poll up to ``wait_seconds``."""
    settings = settings or AgentSettings.from_env()
    rows = rows_of(store)
    deadline = time.monotonic() + max(0.0, min(wait_seconds, 30.0))
    while True:
        seen = BELL.generation()
        _sweep(rows, settings)
        me = rows.get(agent_id)
        if me is None:
            raise LookupError(f"no agent {agent_id}: register again")
        out = Fetched()
        if me.status == "online" and not me.draining and max_jobs > 0:
            out.jobs = _claim(rows, me, max_jobs, settings)
        delivered, out.stop, _ = rows.deliver(agent_id)
        graphs: dict[str, Any] = {}
        out.tasks = [(t, j, _task_secrets(store, t, j, graphs)) for t, j in delivered]
        out.ended = rows.ended_jobs(agent_id, held)
        if out or time.monotonic() >= deadline:
            return out
        BELL.wait(seen, min(FETCH_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


#: A waiting fetch looks at the store again this often without a ring of this process's bell (work
#: queued by another replica); a ring (new work, a stop, a report here) wakes it at once.
FETCH_POLL_SECONDS = 1.0

#: A job younger than this waits for a less loaded matching agent before a busier one takes it.
_PREFER_LESS_LOADED_SECONDS = 1.0


def _claim(rows: AgentRows, me: AgentRow, max_jobs: int, settings: AgentSettings) -> list[JobRow]:
    candidates = rows.claimable()
    if not candidates:
        return []
    others = [a for a in rows.all_agents() if a.id != me.id and a.status == "online" and not a.draining
              and a.running < a.capacity]
    load = me.running
    won: list[JobRow] = []
    for job in candidates:
        if len(won) >= max_jobs or load >= me.capacity:
            break
        selector = _selector(job.selector)
        if selector is not None and not selector.matches(me.labels):
            continue
        young = (time.time() - _created(job)) < _PREFER_LESS_LOADED_SECONDS
        if young and any(a.running < load and (selector is None or selector.matches(a.labels)) for a in others):
            continue  # a less loaded matching agent takes it (least loaded wins)
        claimed = rows.claim(job.id, me.id, settings.lease_seconds)
        if claimed is not None:
            won.append(claimed)
            load += 1
    return won


def _created(job: JobRow) -> float:
    """When this process queued the job (0 for another replica's: it counts as old)."""
    return _job_created.get(job.id, 0.0)


_job_created: dict[str, float] = {}


def _selector(text: str | None) -> LabelSelector | None:
    return None if not text else LabelSelector.model_validate_json(text)


def report_status(store: RunStore, agent_id: str, *, job_id: str, token: int, task_id: str,
                  exit_code: int | None, error: str | None, stopped: bool) -> bool:
    """Record a task's end; False when the report is stale (the agent lost that job's lease)."""
    ok = rows_of(store).report(agent_id, job_id, token, task_id, exit_code=exit_code, error=error, stopped=stopped)
    BELL.ring()
    return ok


def report_log(store: RunStore, agent_id: str, *, job_id: str, token: int,
               lines: list[tuple[int, str, str, str]]) -> int | None:
    """Store a batch of lines; the last line number stored (None: stale lease, the lines are refused)."""
    acked = rows_of(store).append_lines(agent_id, job_id, token, lines)
    BELL.ring()
    return acked


def request_cancel(store: RunStore, task_id: str, why: str, job_id: str | None = None) -> None:
    """Ask the agent running ``task_id`` to stop it; LookupError when there is no such task (of ``job_id``)."""
    if not rows_of(store).request_stop(task_id, why, job_id):
        raise LookupError(f"no agent task {task_id}" + (f" in job {job_id}" if job_id else ""))
    BELL.ring()


def job_lines(store: RunStore, job_id: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    return [{"line": r.line, "task_id": r.task_id, "stream": r.stream, "content": r.content}
            for r in rows_of(store).lines(job_id, after, limit)]


# -- the coordinator side: a backend that runs a node's command on an agent ----------------------------
def routed(node: Node, settings: AgentSettings) -> bool:
    """Whether ``node`` runs on an agent: its job selects agents, or every job does."""
    return node.selector is not None or settings.jobs_on == "agents"


BackendFactory = Callable[[str, "RunContext"], "Backend"]


def backend_factory(store: RunStore, graph: ExecutionGraph,
                    settings: AgentSettings | None = None) -> BackendFactory | None:
    """For the executor: None when no node of ``graph`` runs on an agent (nothing changes)."""
    settings = settings or AgentSettings.from_env()
    if not any(routed(n, settings) for n in graph.nodes):
        return None
    shared: dict[str, RunAgents] = {}

    def make(kind: str, ctx: RunContext) -> Backend:
        run = shared.get("run")
        if run is None:
            run = shared["run"] = RunAgents(rows_of(store), ctx, settings)
        return _Routed(kind, ctx, run)

    return make


class RunAgents:
    """One run attempt's jobs on agents: job path -> the agent job that runs its nodes now."""

    def __init__(self, rows: AgentRows, ctx: RunContext, settings: AgentSettings) -> None:
        self.rows = rows
        self.ctx = ctx
        self.settings = settings
        self._jobs: dict[str, str] = {}
        self._job_locks: dict[str, asyncio.Lock] = {}
        self._finished: set[str] = set()
        self._steps: dict[str, set[str]] = {}
        #: per job, the steps that succeeded on its agent, in order (run again when the job moves)
        self._succeeded: dict[str, list[StepRequest]] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    async def _job_for(self, node: Node) -> tuple[str, bool]:
        """The agent job for ``node``'s job, and whether it was made just now (its agent was lost)."""
        async with self._lock:
            if not self._jobs and self.ctx.attempt > 1:  # a takeover: the dead attempt's jobs end here
                await asyncio.to_thread(self.rows.end_older_attempts, self.ctx.run_id, self.ctx.attempt)
            job_id = self._jobs.get(node.job)
            if job_id is not None:
                row = await asyncio.to_thread(self.rows.job, job_id)
                if row is not None and row.state in ("queued", "claimed"):
                    return job_id, False
            selector = node.selector.model_dump_json() if node.selector is not None else None
            graph = self.ctx.graph.model_copy(update={"nodes": [n for n in self.ctx.graph.nodes if n.job == node.job]})
            job_id = await asyncio.to_thread(self.rows.create_job, run_id=self.ctx.run_id, attempt=self.ctx.attempt,
                                             job=node.job, selector=selector, graph=graph.model_dump_json())
            _job_created[job_id] = time.time()
            self._jobs[node.job] = job_id
            return job_id, True

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        """Run ``req`` on the agent holding the node's job. When that job had to move to a new agent
        (its first one was lost), the steps of it that already succeeded run again there first, so
        the new workspace holds what they made: the job restarts as a whole, as GitLab retries a job."""
        node = req.node
        await self._finish_upstream(node)
        lock = self._job_locks.setdefault(node.job, asyncio.Lock())
        async with lock:
            job_id, fresh = await self._job_for(node)
            done = self._succeeded.get(node.job, [])
            if fresh and done and req.purpose != "rollback":
                for earlier in done:
                    if earlier.node.id == node.id and earlier.purpose == req.purpose:
                        continue
                    output("stderr", f"[worldtree] job {node.job} moved to a new agent: running its step "
                                     f"{earlier.node.id} again first")
                    code = await self._task(job_id, earlier, lambda _s, _l: None)
                    if code != 0:
                        raise BackendError(f"job {node.job} moved to a new agent, where its earlier step "
                                           f"{earlier.node.id} failed (exit {code})")
        code = await self._task(job_id, req, output)
        if code == 0 and req.purpose == "run":
            self._succeeded.setdefault(node.job, []).append(req)
        return code

    async def _finish_upstream(self, node: Node) -> None:
        """Jobs all of whose steps come before ``node`` (through ``needs``) are over: their agents
        drop them now (workspace removed, lease no longer renewed) instead of at the run's end."""
        if not self._jobs:
            return
        by_id = self.ctx.graph.by_id()
        seen: set[str] = set()
        todo = list(node.needs)
        while todo:
            current = todo.pop()
            if current in seen or current not in by_id:
                continue
            seen.add(current)
            todo.extend(by_id[current].needs)
        for job, job_id in list(self._jobs.items()):
            if job == node.job or job_id in self._finished:
                continue
            steps = self._steps.setdefault(job, {n.id for n in self.ctx.graph.nodes if n.job == job})
            if steps <= seen:
                self._finished.add(job_id)
                await asyncio.to_thread(self.rows.finish_job, job_id)
                BELL.ring()

    async def _task(self, job_id: str, req: StepRequest, output: OutputSink) -> int:
        node = req.node
        hidden = {name: req.env[name] for name in node.secrets if name in req.env}
        env = {k: v for k, v in req.env.items() if k not in hidden}
        task_id = await asyncio.to_thread(self.rows.add_task, job_id, node=node.id, command=req.command, env=env,
                                          purpose=req.purpose, try_number=req.try_number, workdir=node.workdir)
        secret_values = dict(hidden)
        if self.ctx.secret_values:
            secret_values.update({f"__mask_{i}": v for i, v in enumerate(self.ctx.secret_values)})
        if secret_values:
            _TASK_SECRETS[task_id] = secret_values
        BELL.ring()
        last = 0
        try:
            while True:
                task, job, lines = await asyncio.to_thread(self.rows.poll, task_id, job_id, last)
                for line in lines:
                    last = line.line
                    if line.task_id == task_id:
                        output("stderr" if line.stream == "stderr" else "stdout", line.content)
                if task is None or job is None:
                    raise BackendError(f"agent task {task_id} vanished from the store")
                if task.state == "done":
                    _TASK_SECRETS.pop(task_id, None)
                    if task.error:
                        raise BackendError(task.error)
                    if task.stopped or task.exit_code is None:
                        raise BackendError(f"the agent stopped step {node.id} on its own")
                    return task.exit_code
                if job.state in ("lost", "done"):
                    await asyncio.to_thread(self.rows.abandon_task, task_id, "lost")
                    who = f"agent {job.agent_id}" if job.agent_id else "no agent"
                    raise BackendError(f"job {node.job} lost on {who}: {job.error or job.state}; "
                                       "the next try runs on another matching agent")
                await asyncio.to_thread(_sweep, self.rows, self.settings)
                await BELL.wait_async(self.settings.poll_seconds)
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(task_id, job_id))
            raise

    async def _stop(self, task_id: str, job_id: str) -> None:
        """Ask the agent to stop the task, and wait (bounded) until it says it did or its job is gone."""
        await asyncio.to_thread(request_cancel_rows, self.rows, task_id)
        deadline = time.monotonic() + self.ctx.grace_seconds + 2.0
        while time.monotonic() < deadline:
            task, job, _ = await asyncio.to_thread(self.rows.poll, task_id, job_id, 1 << 62)
            if task is None or task.state == "done" or job is None or job.state in ("lost", "done"):
                break
            if task.state == "queued":  # no agent has it yet: nothing runs, nobody to wait for
                await asyncio.to_thread(self.rows.abandon_task, task_id, "stopped before an agent took it")
                break
            await BELL.wait_async(self.settings.poll_seconds)
        _TASK_SECRETS.pop(task_id, None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self.rows.finish_jobs, self.ctx.run_id, self.ctx.attempt)
        BELL.ring()


def request_cancel_rows(rows: AgentRows, task_id: str) -> None:
    rows.request_stop(task_id, "stop")
    BELL.ring()


class _Routed:
    """The backend one kind of target gets: a node routed to agents goes there, others run here."""

    def __init__(self, kind: str, ctx: RunContext, run: RunAgents) -> None:
        self.kind = kind
        self.ctx = ctx
        self.run = run
        self._inner: Backend | None = None

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        if routed(req.node, self.run.settings):
            return await self.run.execute(req, output)
        if self._inner is None:
            from worldtree.backends.registry import create_backend

            self._inner = create_backend(self.kind, self.ctx)
        return await self._inner.execute(req, output)

    async def close(self) -> None:
        try:
            if self._inner is not None:
                await self._inner.close()
        finally:
            await self.run.close()


__all__ = ["BELL", "PROTOCOL_VERSION", "SECRET_METADATA", "AgentSettings", "Fetched", "NotThisAgent",
           "ProtocolMismatch", "backend_factory", "check_secret", "drain", "fetch", "get_agent", "heartbeat",
           "list_agents", "register", "report_log", "report_status", "unregister", "update_labels",
           "use_secret_store"]
