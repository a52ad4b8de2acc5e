"""The scheduler as a state machine: (graph, node states, one event) -> what to do next.

No I/O, no asyncio, no clock: every event carries ``now`` (wall-clock seconds since the epoch)
and every deadline is a wall-clock time, so the progress can live in the store and any process
can load it and go on (Argo recomputes a DAG's phase from its node statuses; Prefect guards
every transition with rules). Whoever holds the run's lease feeds events in and carries out the
returned :class:`Decision`: it writes the changes to the store, hands ``dispatch`` to a
dispatcher, asks it to ``stop`` nodes, and sends a :class:`Tick` at ``wake_at``.

Decided here and nowhere else:

* readiness from a ready-set over explicit edges, at most ``concurrency`` nodes at once;
* conditions (``when``, ``if`` with ``success()``/``failure()``/``always()``/``cancelled()``),
  missing secrets, expired scopes;
* fail-fast (``on_failure: stop``), ``continue``, and ``rollback`` (completed nodes undone one at a
  time in reverse completion order; a rollback that fails is recorded, never raised);
* retries with backoff: a failed try waits in ``running`` with ``retry_at`` set, holding no slot;
* timeouts at four levels (:mod:`worldtree.model.timeouts`): the step timeout applies per try and
  covers its precheck; job, stage and pipeline timeouts cover everything inside them;
* cancel: running nodes are stopped, backoff waits end; nodes that become ready afterwards run
  only if they are ``post`` hooks, ``when: always``, or their ``if`` holds with ``cancelled()``
  true. A second cancel request stops those too. Rollback is stopped by a cancel as well;
* a lost executor (:class:`LeaseExpired`) counts as a failed try with an error, so it is retried
  like any other;
* an internal :class:`Fault` stops everything and ends the run as ``error``.

A stop is a request: the node keeps its ``running`` state until the dispatcher reports it gone
(:class:`NodeExited` with ``stopped``), and then takes the verdict recorded when it was asked
(timed_out, cancelled). So a node is never shown as finished while its process still runs.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from worldtree.model.graph import ExecutionGraph, Node
from worldtree.model.states import DONE_OK, TERMINAL, NodeState, RunState, SkipReason
from worldtree.model.timeouts import Limit, cleanup_deadline, deadline, expired_scope

Purpose = Literal["run", "rollback"]
_BROKEN = (NodeState.FAILED, NodeState.TIMED_OUT)


# -- events -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Begin:
    now: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one dispatch ended, as the dispatcher saw it.

    ``exit_code`` of the command (None if it never ran); ``error`` when the executor could not run
    it (image missing, host unreachable: the node fails with reason ``error``); ``precheck_done``
    when the precheck exited 0 (the work is already done); ``stopped`` when it ended because it was
    asked to stop (the machine already knows why).
    """

    exit_code: int | None = None
    error: str | None = None
    precheck_done: bool = False
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class NodeExited:
    node: str
    outcome: Outcome
    now: float
    purpose: Purpose = "run"


@dataclass(frozen=True, slots=True)
class CancelRequested:
    reason: str
    now: float


@dataclass(frozen=True, slots=True)
class Tick:
    """A deadline or a retry time may have passed."""

    now: float


@dataclass(frozen=True, slots=True)
class LeaseExpired:
    """The executor holding ``node`` stopped renewing its lease: its work is lost."""

    node: str
    now: float


@dataclass(frozen=True, slots=True)
class Fault:
    """worldtree itself broke (a store that cannot take writes, a listener that raised)."""

    error: str
    now: float


Event = Begin | NodeExited | CancelRequested | Tick | LeaseExpired | Fault


# -- decisions ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Dispatch:
    """Run ``node`` (try ``try_number``): its precheck first when ``precheck``; or its rollback."""

    node: Node
    try_number: int
    purpose: Purpose = "run"
    precheck: bool = False
    deadline: Limit | None = None


@dataclass(slots=True)
class Change:
    """A node transition to write (and then show). ``reason`` overrides the node's for display."""

    node: str
    state: NodeState
    reason: str | None = None


@dataclass(slots=True)
class Decision:
    changes: list[Change] = field(default_factory=list)
    dispatch: list[Dispatch] = field(default_factory=list)
    stop: list[tuple[str, str]] = field(default_factory=list)  # (node id, why) -> dispatcher.stop
    scopes_started: dict[str, float] = field(default_factory=dict)  # scope id -> wall-clock start
    wake_at: float | None = None
    finished: RunState | None = None


# -- progress -----------------------------------------------------------------------------------
@dataclass(eq=False, slots=True)
class NodeProgress:
    """One node's persisted state plus what the machine derives from its neighbours."""

    node: Node
    deps_left: int
    state: NodeState = NodeState.PENDING
    try_number: int = 1
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None
    deadline: Limit | None = None
    retry_at: float | None = None
    dispatched: bool = False  # an executor holds it now
    stopping: tuple[NodeState, str] | None = None  # verdict once the executor confirms the stop
    ok: bool = False
    bad_upstream: str | None = None  # first dependency that did not succeed
    upstream_failed: bool = False  # an ancestor failed or timed out (for failure())
    reused_attempt: int | None = None


class Machine:
    """The run's progress and the rules that advance it. :meth:`advance` is the only entry."""

    def __init__(self, graph: ExecutionGraph, *, concurrency: int, secrets_available: Iterable[str] = (),
                 reuse: dict[str, int] | None = None) -> None:
        """``reuse`` maps node ids that succeeded in an earlier attempt to that attempt's number."""
        self.graph = graph
        self.concurrency = max(1, concurrency)
        self.secrets_available = frozenset(secrets_available)
        self.reuse = reuse or {}
        self.nodes = {n.id: NodeProgress(n, len(n.needs)) for n in graph.nodes}
        self._children: dict[str, list[NodeProgress]] = {n.id: [] for n in graph.nodes}
        for n in graph.nodes:
            for dep in n.needs:
                self._children[dep].append(self.nodes[n.id])
        self._ready: collections.deque[NodeProgress] = collections.deque(
            p for p in self.nodes.values() if p.deps_left == 0)
        self._retry_ready: collections.deque[NodeProgress] = collections.deque()
        self._busy: set[NodeProgress] = set()  # dispatched: each holds a slot
        self._waiting: set[NodeProgress] = set()  # in backoff: no slot, a retry time
        self.scope_started: dict[str, float] = {}
        self._timed_scopes = frozenset(k for k, scope in graph.scopes.items() if scope.timeout is not None)
        self.completed: list[str] = []  # completion order, for rollback
        self._finished = 0
        self.failed = False
        self.stopping = False  # fail-fast: no new on_success work
        self.cancel_reason: str | None = None
        self.forced = False  # a second cancel: cleanup nodes are stopped too
        self.fault: str | None = None
        self._rollback: collections.deque[NodeProgress] | None = None
        self._rolling: NodeProgress | None = None
        self.final: RunState | None = None

    # -- the entry point ----------------------------------------------------------------------
    def advance(self, event: Event) -> Decision:
        d = Decision()
        if self.final is not None:
            return d
        if isinstance(event, NodeExited):
            if event.purpose == "rollback":
                self._rolled_back(event, d)
            else:
                self._exited(self.nodes[event.node], event.outcome, event.now, d)
        elif isinstance(event, Tick):
            self._tick(event.now, d)
        elif isinstance(event, CancelRequested):
            self._cancel(event.reason, event.now, d)
        elif isinstance(event, LeaseExpired):
            p = self.nodes[event.node]
            if p.dispatched:
                self._exited(p, Outcome(error="its executor stopped renewing the lease (lost)"), event.now, d)
        elif isinstance(event, Fault) and self.fault is None:
            self.fault = event.error
            self._cancel(f"internal error: {event.error}", event.now, d, force=True)
        self._pump(event.now, d)
        d.wake_at = self._wake_at()
        return d

    # -- readiness ----------------------------------------------------------------------------
    def _pump(self, now: float, d: Decision) -> None:
        while self._retry_ready and len(self._busy) < self.concurrency:
            p = self._retry_ready.popleft()
            self._dispatch(p, now, d, first=False)
        while self._ready:
            p = self._ready[0]
            verdict = self._decide(p, now)
            if verdict is None:
                if len(self._busy) >= self.concurrency:
                    break
                self._ready.popleft()
                self._dispatch(p, now, d, first=True)
            else:
                self._ready.popleft()
                self._finish(p, *verdict, now=now, d=d)
        if self._finished == len(self.nodes) and not self._busy and self._rolling is None:
            self._after_graph(now, d)

    def _decide(self, p: NodeProgress, now: float) -> tuple[NodeState, str | None, str | None] | None:
        """None: run it now. Otherwise the terminal (state, reason, error) it gets without running."""
        node = p.node
        previous = self.reuse.get(node.id)
        if previous is not None:
            p.reused_attempt = previous
            return NodeState.REUSED, f"attempt {previous}", None
        cancelled = self.cancel_reason is not None
        if cancelled and (self.forced or not self._cleanup_runs(node)):
            return NodeState.CANCELLED, "never started", f"{self.cancel_reason} before this node started"
        success = p.bad_upstream is None and not self.stopping and not cancelled
        failure = p.upstream_failed or self.failed
        if node.condition:
            from worldtree.engine.conditions import ConditionError, Status, evaluate

            try:
                wanted = evaluate(node.condition, {**self.graph.env, **node.env},
                                  Status(upstream_ok=success, failed=failure, cancelled=cancelled))
            except ConditionError as exc:
                return NodeState.FAILED, None, str(exc)
        elif node.kind == "post" or node.when == "always":
            wanted = True
        else:
            wanted = success if node.when == "on_success" else failure
        if not wanted:
            if node.when == "on_success" and not node.condition and not success:
                if p.bad_upstream is not None:
                    return NodeState.SKIPPED, SkipReason.UPSTREAM, f"upstream {p.bad_upstream!r} did not succeed"
                return NodeState.SKIPPED, SkipReason.UPSTREAM, "not started: the pipeline stopped after a failure"
            return NodeState.SKIPPED, SkipReason.CONDITION, f"condition false (when: {node.when}" + (
                f", if: {node.condition})" if node.condition else ")")
        missing = [name for name in node.secrets if name not in self.secrets_available]
        if missing:
            return NodeState.FAILED, None, (f"secret {missing[0]} is not set; provide it with --secrets-file "
                                            f"or the environment variable {missing[0]}")
        if not cancelled and node.kind != "post":
            expired = expired_scope(self.graph, node, self.scope_started, now)
            if expired is not None:
                return NodeState.TIMED_OUT, None, expired.message()
        return None

    def _cleanup_runs(self, node: Node) -> bool:
        """Whether ``node`` still runs after a cancel: post hooks, ``when: always``, ``if`` true with cancelled()."""
        if node.kind == "post" or (node.when == "always" and not node.condition):
            return True
        if not node.condition:
            return False
        from worldtree.engine.conditions import ConditionError, Status, evaluate, uses_status

        if not uses_status(node.condition):
            return False
        try:
            return evaluate(node.condition, {**self.graph.env, **node.env},
                            Status(upstream_ok=False, failed=self.failed, cancelled=True))
        except ConditionError:
            return False

    # -- dispatch -----------------------------------------------------------------------------
    def _dispatch(self, p: NodeProgress, now: float, d: Decision, *, first: bool) -> None:
        node = p.node
        if first:
            for scope_id in node.scopes:  # only scopes with a timeout have a deadline to keep
                if scope_id not in self.scope_started and scope_id in self._timed_scopes:
                    self.scope_started[scope_id] = now
                    d.scopes_started[scope_id] = now
            p.started_at = now
        if self.cancel_reason is not None or node.kind == "post":
            p.deadline = cleanup_deadline(node, now)
        else:
            p.deadline = deadline(self.graph, node, now, self.scope_started)
        p.retry_at = None
        p.dispatched = True
        p.state = NodeState.RUNNING
        self._busy.add(p)
        d.changes.append(Change(node.id, NodeState.RUNNING, None if first else f"try {p.try_number}"))
        d.dispatch.append(Dispatch(node, p.try_number, "run", precheck=bool(node.precheck) and first,
                                   deadline=p.deadline))

    def _exited(self, p: NodeProgress, outcome: Outcome, now: float, d: Decision) -> None:
        if not p.dispatched:
            return  # a late or duplicate report: the node is already settled
        p.dispatched = False
        self._busy.discard(p)
        p.exit_code = outcome.exit_code
        if p.stopping is not None:
            state, error = p.stopping
            p.stopping = None
            self._finish(p, state, None, error, now=now, d=d)
        elif outcome.precheck_done:
            self._finish(p, NodeState.SKIPPED, SkipReason.PRECHECK, "precheck: already done, not run", now=now, d=d)
        elif outcome.stopped:
            self._finish(p, NodeState.CANCELLED, None, self.cancel_reason or "stopped", now=now, d=d)
        elif outcome.error is None and outcome.exit_code == 0:
            self._finish(p, NodeState.SUCCEEDED, None, None, now=now, d=d)
        else:
            what = outcome.error or f"exit code {outcome.exit_code}"
            if p.try_number <= p.node.retry.max and self.cancel_reason is None and not self._stopped_by_failfast(p):
                delay = p.node.retry.delay(p.try_number)
                p.try_number += 1
                if delay > 0:
                    p.retry_at = now + delay
                    self._waiting.add(p)
                else:
                    self._retry_ready.append(p)
                d.changes.append(Change(p.node.id, NodeState.RUNNING, f"retry {p.try_number - 1}/{p.node.retry.max} "
                                        f"in {_fmt(delay)}s after {what}"))
                return
            self._finish(p, NodeState.FAILED, "error" if outcome.error else None, what, now=now, d=d)

    def _stopped_by_failfast(self, p: NodeProgress) -> bool:
        return self.stopping and p.node.when == "on_success" and not self._cleanup_runs(p.node)

    def _tick(self, now: float, d: Decision) -> None:
        for p in list(self._busy):
            if p.stopping is None and p.deadline is not None and now >= p.deadline.at:
                self._stop(p, NodeState.TIMED_OUT, p.deadline.message(), d)
        for p in list(self._waiting):
            expired = expired_scope(self.graph, p.node, self.scope_started, now)
            if expired is not None:
                self._waiting.discard(p)
                self._finish(p, NodeState.TIMED_OUT, None, expired.message(), now=now, d=d)
            elif p.retry_at is not None and now >= p.retry_at:
                self._waiting.discard(p)
                self._retry_ready.append(p)
        rolling = self._rolling
        if rolling is not None and rolling.stopping is None and rolling.deadline is not None \
                and now >= rolling.deadline.at:
            rolling.stopping = (rolling.state, "rollback timed out")
            d.stop.append((rolling.node.id, "rollback timed out"))

    def _stop(self, p: NodeProgress, verdict: NodeState, error: str, d: Decision) -> None:
        p.stopping = (verdict, error)
        d.stop.append((p.node.id, error))

    # -- finishing ----------------------------------------------------------------------------
    def _finish(self, p: NodeProgress, state: NodeState, reason: str | None, error: str | None, *,
                now: float, d: Decision) -> None:
        p.state = state
        p.reason = reason
        p.error = error
        p.finished_at = now
        p.retry_at = None
        if p.started_at is None and state not in (NodeState.SKIPPED, NodeState.CANCELLED, NodeState.REUSED):
            p.started_at = now
        allowed = p.node.allow_failure and state in _BROKEN
        if allowed:
            p.reason = "allowed to fail"
        p.ok = state in DONE_OK or allowed or (state == NodeState.SKIPPED and reason in (
            SkipReason.CONDITION, SkipReason.PRECHECK))
        self._finished += 1
        self.completed.append(p.node.id)
        d.changes.append(Change(p.node.id, state, p.reason))
        broke = state in _BROKEN and not allowed
        for child in self._children[p.node.id]:
            child.deps_left -= 1
            if not p.ok and child.bad_upstream is None:
                child.bad_upstream = p.node.id
            child.upstream_failed = child.upstream_failed or broke or p.upstream_failed
            if child.deps_left == 0:
                self._ready.append(child)
        if broke:
            self.failed = True
            if self.graph.on_failure in ("stop", "rollback") and not self.stopping:
                self.stopping = True
                why = f"fail-fast: {p.node.id} {state.value}"
                for other in list(self._busy):
                    if other.stopping is None and self._stopped_by_failfast(other):
                        self._stop(other, NodeState.CANCELLED, why, d)
                for other in list(self._waiting):
                    if self._stopped_by_failfast(other):
                        self._waiting.discard(other)
                        self._finish(other, NodeState.CANCELLED, None, why, now=now, d=d)

    def _cancel(self, reason: str, now: float, d: Decision, *, force: bool = False) -> None:
        if self.cancel_reason is not None:
            if self.forced and not force:
                return
            self.forced = True  # asked twice: cleanup work goes too
        else:
            self.cancel_reason = reason
            self.forced = force
        for p in list(self._busy):
            if p.stopping is None and (self.forced or not self._cleanup_runs(p.node)):
                self._stop(p, NodeState.CANCELLED, reason, d)
        for p in list(self._waiting) + list(self._retry_ready):
            self._waiting.discard(p)
            self._finish(p, NodeState.CANCELLED, None, reason, now=now, d=d)
        self._retry_ready.clear()
        if self._rollback is not None:
            self._rollback.clear()
        rolling = self._rolling
        if rolling is not None and rolling.stopping is None:
            rolling.stopping = (rolling.state, f"rollback stopped: {reason}")
            d.stop.append((rolling.node.id, reason))

    # -- after the graph: rollback, then the verdict --------------------------------------------
    def _after_graph(self, now: float, d: Decision) -> None:
        if self._rollback is None:
            self._rollback = collections.deque()
            if self.graph.on_failure == "rollback" and self.failed and self.cancel_reason is None:
                for node_id in reversed(self.completed):
                    p = self.nodes[node_id]
                    if p.state in DONE_OK and p.node.rollback is not None:
                        self._rollback.append(p)
        if self._rollback:
            p = self._rollback.popleft()
            self._rolling = p
            p.deadline = cleanup_deadline(p.node, now)
            d.dispatch.append(Dispatch(p.node, p.try_number, "rollback", deadline=p.deadline))
            return
        self.final = self._verdict()
        d.finished = self.final

    def _rolled_back(self, event: NodeExited, d: Decision) -> None:
        p = self._rolling
        if p is None or p.node.id != event.node:
            return
        self._rolling = None
        out = event.outcome
        if p.stopping is not None:
            result, error = "rollback_failed", p.stopping[1]
            p.stopping = None
        elif out.error is not None:
            result, error = "rollback_failed", f"rollback: {out.error}"
        elif out.exit_code != 0:
            result, error = "rollback_failed", f"rollback exit code {out.exit_code}"
        else:
            result, error = "rolled_back", None
        p.reason, p.error = result, error
        d.changes.append(Change(p.node.id, p.state, result))

    def _verdict(self) -> RunState:
        if self.fault is not None:
            return RunState.ERROR
        if self.cancel_reason is not None:
            return RunState.CANCELLED
        bad = [p for p in self.nodes.values() if not p.ok]
        if not bad:
            return RunState.SUCCEEDED
        if any(p.state == NodeState.TIMED_OUT for p in bad):
            return RunState.TIMED_OUT
        return RunState.FAILED

    def _wake_at(self) -> float | None:
        times = [p.deadline.at for p in self._busy if p.deadline is not None and p.stopping is None]
        times.extend(p.retry_at for p in self._waiting if p.retry_at is not None)
        for p in self._waiting:  # a scope may expire during a backoff
            for scope_id in p.node.scopes:
                scope = self.graph.scopes.get(scope_id)
                if scope is not None and scope.timeout is not None and scope_id in self.scope_started:
                    times.append(self.scope_started[scope_id] + scope.timeout)
        if self._rolling is not None and self._rolling.deadline is not None:
            times.append(self._rolling.deadline.at)
        return min(times) if times else None

    # -- queries ------------------------------------------------------------------------------
    @property
    def states(self) -> dict[str, NodeState]:
        return {node_id: p.state for node_id, p in self.nodes.items()}


def _fmt(seconds: float) -> str:
    from worldtree.model.durations import format_seconds

    return format_seconds(seconds)


# -- taking a run over ----------------------------------------------------------------------------
class NodeSnapshot(Protocol):
    """What the store keeps of a node (``model.records.NodeRecord`` fits)."""

    node: str
    state: str
    try_number: int
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    error: str | None
    reason: str | None
    deadline_at: datetime | None
    retry_at: datetime | None


def restore(graph: ExecutionGraph, snapshots: Iterable[NodeSnapshot], *, concurrency: int,
            scope_deadlines: dict[str, datetime] | None = None, cancel_reason: str | None = None,
            secrets_available: Iterable[str] = ()) -> Machine:
    """A machine in the state the store recorded, so another process can go on with the run.

    Finished nodes are replayed in finishing order (so fail-fast, conditions and rollback order
    come out as they would have); nodes that were ``running`` are held by an executor this
    process cannot see: the caller sends :class:`LeaseExpired` for them when their lease ends (or
    at once, when it knows the executor died). A node waiting to retry keeps its retry time.
    """
    machine = Machine(graph, concurrency=concurrency, secrets_available=secrets_available)
    for scope_id, at in (scope_deadlines or {}).items():
        scope = graph.scopes.get(scope_id)
        if scope is not None and scope.timeout is not None:
            machine.scope_started[scope_id] = at.timestamp() - scope.timeout
    scratch = Decision()
    by_id = {s.node: s for s in snapshots if s.node in machine.nodes}
    finished = sorted((s for s in by_id.values() if NodeState(s.state) in TERMINAL),
                      key=lambda s: (s.finished_at or s.started_at or _EPOCH))
    for snap in finished:
        p = machine.nodes[snap.node]
        _copy(p, snap)
        machine._finish(p, NodeState(snap.state), snap.reason, snap.error,
                        now=_ts(snap.finished_at) or 0.0, d=scratch)
        p.reason = snap.reason
    for snap in by_id.values():
        if NodeState(snap.state) != NodeState.RUNNING:
            continue
        p = machine.nodes[snap.node]
        _copy(p, snap)
        p.state = NodeState.RUNNING
        if snap.retry_at is not None:
            p.retry_at = snap.retry_at.timestamp()
            machine._waiting.add(p)
        else:
            p.dispatched = True
            machine._busy.add(p)
            if snap.deadline_at is not None:
                p.deadline = _stored_limit(machine, p.node, snap.deadline_at.timestamp())
    machine._ready = collections.deque(
        p for p in machine.nodes.values() if p.state == NodeState.PENDING and p.deps_left == 0)
    if cancel_reason is not None:
        machine.cancel_reason = cancel_reason
    return machine


def _stored_limit(machine: Machine, node: Node, at: float) -> Limit:
    """The limit behind a stored deadline: the scope whose deadline it is, else the step's own."""
    for scope_id in node.scopes:
        scope = machine.graph.scopes.get(scope_id)
        started = machine.scope_started.get(scope_id)
        if scope is not None and scope.timeout is not None and started is not None \
                and abs(started + scope.timeout - at) < 0.001:
            return Limit(at, scope.kind, scope.timeout)
    from worldtree.model.timeouts import DEFAULT_TIMEOUT

    return Limit(at, "step", node.timeout or DEFAULT_TIMEOUT)


def _copy(p: NodeProgress, snap: NodeSnapshot) -> None:
    p.try_number = snap.try_number
    p.started_at = _ts(snap.started_at)
    p.exit_code = snap.exit_code
    if NodeState(snap.state) == NodeState.REUSED and snap.reason and snap.reason.startswith("attempt "):
        p.reused_attempt = int(snap.reason.split()[1]) if snap.reason.split()[1].isdigit() else None


def _ts(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


_EPOCH = datetime.fromtimestamp(0, UTC)
