"""The DAG scheduler: one ready-set over explicit edges, at most ``concurrency`` nodes at once.

A node starts the moment its dependencies allow (no levels: unrelated work never waits).
Every state change goes through :meth:`Engine._finish` / :meth:`Engine._mark_running`, so the
listener sees each transition exactly once and in order.
"""

from __future__ import annotations

import asyncio
import collections
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from worldtree.backends.base import Backend, OutputSink, RunContext, StepRequest, Stream
from worldtree.backends.registry import create_backend
from worldtree.engine.environment import node_env, runner_env
from worldtree.engine.events import EngineListener
from worldtree.engine.masking import Masker
from worldtree.errors import BackendError
from worldtree.model.durations import format_seconds
from worldtree.model.graph import Node
from worldtree.model.records import LogLine, NodeEvent, NodeRecord
from worldtree.model.states import DONE_OK, NodeState, RunState, SkipReason

#: Rollback commands get this long when their node declares no timeout.
ROLLBACK_TIMEOUT = 600.0

_Verdict = tuple[NodeState, str | None, str | None]  # state, reason, error


@dataclass(eq=False, slots=True)
class _NodeRun:
    node: Node
    deps_left: int
    state: NodeState = NodeState.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None
    try_number: int = 1
    ok: bool = False
    bad_upstream: str | None = None  # first dependency that did not succeed
    upstream_failed: bool = False  # an ancestor failed or timed out (for failure())
    task: asyncio.Task[_Verdict] | None = None
    cancel_reason: str | None = None


class Engine:
    """Runs one attempt of an ExecutionGraph. Create, ``await run()``, optionally ``cancel()``."""

    def __init__(self, ctx: RunContext, listener: EngineListener, *, concurrency: int | None = None,
                 secrets: dict[str, str] | None = None, masker: Masker | None = None,
                 reuse: dict[str, NodeRecord] | None = None) -> None:
        self.ctx = ctx
        self.graph = ctx.graph
        self.listener = listener
        self.concurrency = max(1, concurrency or os.cpu_count() or 1)
        self.secrets = secrets or {}
        self.masker = masker or Masker(list(self.secrets.values()))
        self.reuse = reuse or {}
        self.base_env = runner_env(self.graph, ctx.workdir)
        self._runs = {n.id: _NodeRun(n, len(n.needs)) for n in self.graph.nodes}
        self._children: dict[str, list[_NodeRun]] = {n.id: [] for n in self.graph.nodes}
        for n in self.graph.nodes:
            for dep in n.needs:
                self._children[dep].append(self._runs[n.id])
        self._ready: collections.deque[_NodeRun] = collections.deque(
            r for r in self._runs.values() if r.deps_left == 0)
        self._running: set[_NodeRun] = set()
        self._finished = 0
        self._completed: list[_NodeRun] = []
        self._backends: dict[str, Backend] = {}
        self._scope_started: dict[str, float] = {}
        self._failed = False
        self._stopping = False
        self._cancelled = False
        self._cancel_reason = "cancelled"
        self._done: asyncio.Future[None] | None = None

    # -- public -------------------------------------------------------------------------------

    async def run(self) -> RunState:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._scope_started["pipeline"] = loop.time()
        try:
            self._pump()
            await self._done
            if self.graph.on_failure == "rollback" and self._failed and not self._cancelled:
                await self._rollback()
        finally:
            await self._close_backends()
        return self._final_state()

    def cancel(self, reason: str = "cancelled by user") -> None:
        """Stop new work and cancel running nodes (their backends kill what they started)."""
        if self._cancelled:
            return
        self._cancelled = True
        self._cancel_reason = reason
        for r in list(self._running):
            if r.task is not None:
                r.cancel_reason = reason
                r.task.cancel()

    @property
    def states(self) -> dict[str, NodeState]:
        return {node_id: r.state for node_id, r in self._runs.items()}

    # -- scheduling ---------------------------------------------------------------------------

    def _pump(self) -> None:
        while self._ready:
            r = self._ready[0]
            verdict = self._decide(r)
            if verdict is None:
                if len(self._running) >= self.concurrency:
                    break
                self._ready.popleft()
                self._start(r)
            else:
                self._ready.popleft()
                self._finish(r, *verdict)
        if self._finished == len(self._runs) and self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _decide(self, r: _NodeRun) -> _Verdict | None:
        """None: run it now. Otherwise the terminal state it gets without running."""
        node = r.node
        previous = self.reuse.get(node.id)
        if previous is not None and NodeState(previous.state) in DONE_OK:
            return NodeState.REUSED, f"attempt {previous.attempt}", None
        if self._cancelled:
            return NodeState.CANCELLED, "never started", f"{self._cancel_reason} before this node started"
        success = r.bad_upstream is None and not self._stopping
        failure = r.upstream_failed or self._failed
        if node.condition:
            from worldtree.engine.conditions import ConditionError, Status, evaluate  # rare: import lazily

            try:
                wanted = evaluate(node.condition, {**self.graph.env, **node.env},
                                  Status(upstream_ok=success, failed=failure, cancelled=False))
            except ConditionError as exc:
                return NodeState.FAILED, None, str(exc)
        else:
            wanted = {"on_success": success, "on_failure": failure, "always": True}[node.when]
        if not wanted:
            if node.when == "on_success" and not node.condition and not success:
                if r.bad_upstream is not None:
                    return NodeState.SKIPPED, SkipReason.UPSTREAM, f"upstream {r.bad_upstream!r} did not succeed"
                return NodeState.SKIPPED, SkipReason.UPSTREAM, "not started: the pipeline stopped after a failure"
            return NodeState.SKIPPED, SkipReason.CONDITION, f"condition false (when: {node.when}" + (
                f", if: {node.condition})" if node.condition else ")")
        missing = [name for name in node.secrets if name not in self.secrets]
        if missing:
            return NodeState.FAILED, None, (f"secret {missing[0]} is not set; provide it with --secrets-file "
                                            f"or the environment variable {missing[0]}")
        expired = self._expired_scope(node)
        if expired is not None:
            return NodeState.TIMED_OUT, None, expired
        return None

    def _start(self, r: _NodeRun) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for scope in r.node.scopes:
            self._scope_started.setdefault(scope, now)
        self._mark_running(r)
        self._running.add(r)
        r.task = loop.create_task(self._run_node(r))
        r.task.add_done_callback(lambda task, r=r: self._on_task_done(r, task))  # type: ignore[misc]

    def _on_task_done(self, r: _NodeRun, task: asyncio.Task[_Verdict]) -> None:
        self._running.discard(r)
        if task.cancelled():
            verdict: _Verdict = (NodeState.CANCELLED, None, r.cancel_reason or self._cancel_reason)
        elif task.exception() is not None:
            exc = task.exception()
            verdict = (NodeState.FAILED, "error", f"internal error: {type(exc).__name__}: {exc}")
        else:
            verdict = task.result()
        self._finish(r, *verdict)
        self._pump()

    def _mark_running(self, r: _NodeRun, reason: str | None = None) -> None:
        if r.started_at is None:
            r.started_at = _now()
        r.state = NodeState.RUNNING
        self._emit(r, reason=reason)

    def _finish(self, r: _NodeRun, state: NodeState, reason: str | None, error: str | None) -> None:
        r.state = state
        r.reason = reason
        r.error = self.masker.mask_opt(error)
        r.finished_at = _now()
        if r.started_at is None and state not in (NodeState.SKIPPED, NodeState.CANCELLED, NodeState.REUSED):
            r.started_at = r.finished_at
        allowed = r.node.allow_failure and state in (NodeState.FAILED, NodeState.TIMED_OUT)
        r.ok = state in DONE_OK or allowed or (state == NodeState.SKIPPED and reason in (
            SkipReason.CONDITION, SkipReason.PRECHECK))
        self._finished += 1
        self._completed.append(r)
        self._emit(r, reason=("allowed to fail" if allowed else reason))
        broke = state in (NodeState.FAILED, NodeState.TIMED_OUT) and not allowed
        for child in self._children[r.node.id]:
            child.deps_left -= 1
            if not r.ok and child.bad_upstream is None:
                child.bad_upstream = r.node.id
            child.upstream_failed = child.upstream_failed or broke or r.upstream_failed
            if child.deps_left == 0:
                self._ready.append(child)
        if broke:
            self._failed = True
            if self.graph.on_failure in ("stop", "rollback") and not self._stopping:
                self._stopping = True
                for other in list(self._running):
                    if other.node.when == "on_success" and other.task is not None and not self._runs_anyway(other):
                        other.cancel_reason = f"fail-fast: {r.node.id} {state.value}"
                        other.task.cancel()

    def _runs_anyway(self, r: _NodeRun) -> bool:
        """Whether a running node's ``if:`` still holds after a failure (``always()``, ``failure()``)."""
        if not r.node.condition:
            return False
        from worldtree.engine.conditions import ConditionError, Status, evaluate, uses_status

        if not uses_status(r.node.condition):
            return False
        try:
            return evaluate(r.node.condition, {**self.graph.env, **r.node.env},
                            Status(upstream_ok=False, failed=True, cancelled=False))
        except ConditionError:
            return False

    def _emit(self, r: _NodeRun, reason: str | None = None) -> None:
        self.listener.on_event(NodeEvent(
            run_id=self.ctx.run_id, attempt=self.ctx.attempt, node=r.node.id, state=r.state.value, ts=_now(),
            started_at=r.started_at, finished_at=r.finished_at, exit_code=r.exit_code, error=r.error,
            reason=reason, try_number=r.try_number))

    # -- running one node ---------------------------------------------------------------------

    async def _run_node(self, r: _NodeRun) -> _Verdict:
        node = r.node
        output = self._output_for(node.id)
        env = node_env(node, self.base_env, self.ctx.run_id, self.ctx.attempt, self.secrets)
        workdir = os.path.join(self.ctx.workdir, node.workdir) if node.workdir else self.ctx.workdir
        deadline, level, seconds = self._deadline(node)
        try:
            backend = self._backend(node.target.kind)
            async with asyncio.timeout_at(deadline):
                if node.precheck:
                    code = await backend.execute(
                        StepRequest(node, node.precheck, env, workdir, purpose="precheck"), output)
                    if code == 0:
                        return NodeState.SKIPPED, SkipReason.PRECHECK, "precheck: already done, not run"
                while True:
                    code = await backend.execute(
                        StepRequest(node, node.command, env, workdir, try_number=r.try_number), output)
                    r.exit_code = code
                    if code == 0:
                        return NodeState.SUCCEEDED, None, None
                    if r.try_number > node.retry.max:
                        return NodeState.FAILED, None, f"exit code {code}"
                    delay = node.retry.delay(r.try_number)
                    r.try_number += 1
                    self._mark_running(r, reason=f"retry {r.try_number - 1}/{node.retry.max} in "
                                                 f"{format_seconds(delay)}s after exit code {code}")
                    await asyncio.sleep(delay)
        except TimeoutError:
            return NodeState.TIMED_OUT, None, f"{level} timeout after {format_seconds(seconds)} seconds"
        except BackendError as exc:
            return NodeState.FAILED, "error", str(exc)
        except asyncio.CancelledError:
            return NodeState.CANCELLED, None, r.cancel_reason or self._cancel_reason

    def _output_for(self, node_id: str) -> OutputSink:
        masker, listener, run_id, attempt = self.masker, self.listener, self.ctx.run_id, self.ctx.attempt

        def output(stream: Stream, line: str) -> None:
            listener.on_log(LogLine(run_id, attempt, node_id, stream, masker.mask(line), _now()))

        return output

    def _backend(self, kind: str) -> Backend:
        backend = self._backends.get(kind)
        if backend is None:
            backend = self._backends[kind] = create_backend(kind, self.ctx)
        return backend

    def _deadline(self, node: Node) -> tuple[float, str, float]:
        """The earliest of the node's own timeout and its scopes' deadlines; ties go to the outer level."""
        best: tuple[float, str, float] | None = None
        for scope_id in node.scopes:
            scope = self.graph.scopes.get(scope_id)
            if scope is not None and scope.timeout is not None:
                at = self._scope_started[scope_id] + scope.timeout
                if best is None or at < best[0]:
                    best = (at, scope.kind, scope.timeout)
        if node.timeout is not None:
            at = asyncio.get_running_loop().time() + node.timeout
            if best is None or at < best[0]:
                best = (at, "step", node.timeout)
        return best if best is not None else (asyncio.get_running_loop().time() + 86400.0, "pipeline", 86400.0)

    def _expired_scope(self, node: Node) -> str | None:
        now = asyncio.get_running_loop().time()
        for scope_id in node.scopes:
            scope = self.graph.scopes.get(scope_id)
            started = self._scope_started.get(scope_id)
            if scope is not None and scope.timeout is not None and started is not None \
                    and now >= started + scope.timeout:
                return f"{scope.kind} timeout after {format_seconds(scope.timeout)} seconds"
        return None

    # -- after the graph ----------------------------------------------------------------------

    async def _rollback(self) -> None:
        """Undo completed steps in reverse completion order. Logs failures, never raises."""
        for r in reversed(self._completed):
            node = r.node
            if r.state not in DONE_OK or node.rollback is None:
                continue
            output = self._output_for(node.id)
            env = node_env(node, self.base_env, self.ctx.run_id, self.ctx.attempt, self.secrets)
            workdir = os.path.join(self.ctx.workdir, node.workdir) if node.workdir else self.ctx.workdir
            result, error = "rolled_back", None
            try:
                async with asyncio.timeout(node.timeout or ROLLBACK_TIMEOUT):
                    code = await self._backend(node.target.kind).execute(
                        StepRequest(node, node.rollback, env, workdir, purpose="rollback"), output)
                if code != 0:
                    result, error = "rollback_failed", f"rollback exit code {code}"
            except TimeoutError:
                result, error = "rollback_failed", "rollback timed out"
            except BackendError as exc:
                result, error = "rollback_failed", f"rollback: {exc}"
            self.listener.on_event(NodeEvent(
                run_id=self.ctx.run_id, attempt=self.ctx.attempt, node=node.id, state=r.state.value, ts=_now(),
                started_at=r.started_at, finished_at=r.finished_at, exit_code=r.exit_code,
                error=self.masker.mask_opt(error), reason=result, try_number=r.try_number))

    async def _close_backends(self) -> None:
        for kind, backend in self._backends.items():
            try:
                await backend.close()
            except Exception as exc:  # a broken cleanup must not hide the run's result
                self.listener.on_log(LogLine(self.ctx.run_id, self.ctx.attempt, "worldtree", "stderr",
                                             self.masker.mask(f"cleanup of {kind} backend failed: {exc}"), _now()))

    def _final_state(self) -> RunState:
        if self._cancelled:
            return RunState.CANCELLED
        bad = [r for r in self._runs.values() if not r.ok]
        if not bad:
            return RunState.SUCCEEDED
        if any(r.state == NodeState.TIMED_OUT for r in bad):
            return RunState.TIMED_OUT
        return RunState.FAILED


def _now() -> datetime:
    return datetime.now(UTC)

