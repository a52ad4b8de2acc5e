"""Dispatch: how the engine hands a node to whatever runs it, and hears back.

The engine never creates backends itself. It gives each :class:`~worldtree.engine.machine.Dispatch`
to a :class:`Dispatcher` and receives one :class:`~worldtree.engine.machine.Outcome` per dispatch
through ``report``. :class:`LocalDispatcher` runs nodes in this process through the host, docker
and SSH backends; the server's agent dispatcher and the Argo dispatcher keep the same contract.

Contract (every dispatcher):

* ``start(work, report)`` returns at once; the work runs in the background. ``report(work,
  outcome)`` is called exactly once per ``start``, on the event loop's thread, once the work's
  main process has ended. With ``stopped=True`` nothing of it runs any more; after a normal
  exit, a background process that let go of the step's output may live on until ``close()``
  (a server started for later steps: see ``backends.host``).
* ``stop(node_id, why)`` asks for the node's work to end (SIGTERM, then SIGKILL after the grace
  period, for local processes); idempotent; a no-op for a node it does not hold. The report that
  follows says ``stopped=True`` unless the work ended on its own first.
* Output lines go to ``output(node_id, stream, line)`` as they arrive, unmasked: the engine masks.
* ``close()`` is awaited once, after the last report; it releases what the run held
  (containers, connections) and must be safe when nothing was ever started.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Protocol

from worldtree.backends.base import Backend, BackendFactory, OutputSink, RunContext, StepRequest, Stream
from worldtree.engine.environment import node_env, runner_env
from worldtree.engine.machine import Dispatch, Outcome
from worldtree.errors import BackendError

Report = Callable[[Dispatch, Outcome], None]
NodeOutput = Callable[[str, Stream, str], None]


class Dispatcher(Protocol):
    """See the module docstring for the contract."""

    def start(self, work: Dispatch, report: Report) -> None: ...

    def stop(self, node_id: str, why: str) -> None: ...

    async def close(self) -> None: ...


class LocalDispatcher:
    """Runs nodes in this process, one asyncio task per dispatch, through the run's backends."""

    def __init__(self, ctx: RunContext, output: NodeOutput, *, secrets: dict[str, str] | None = None,
                 backend_factory: Callable[[str, RunContext], Backend] | None = None) -> None:
        self.ctx = ctx
        self.output = output
        self.secrets = secrets or {}
        self.base_env = runner_env(ctx.graph, ctx.workdir)
        self._factory = backend_factory
        self._backends: dict[str, Backend] = {}
        self._tasks: dict[str, asyncio.Task[Outcome]] = {}

    def start(self, work: Dispatch, report: Report) -> None:
        task = asyncio.get_running_loop().create_task(self._run(work))
        self._tasks[work.node.id] = task
        task.add_done_callback(lambda t: self._done(work, t, report))

    def stop(self, node_id: str, why: str) -> None:
        task = self._tasks.get(node_id)
        if task is not None and not task.done():
            task.cancel(why)

    def _done(self, work: Dispatch, task: asyncio.Task[Outcome], report: Report) -> None:
        if self._tasks.get(work.node.id) is task:
            del self._tasks[work.node.id]
        if task.cancelled():
            outcome = Outcome(stopped=True)
        elif (exc := task.exception()) is not None:
            outcome = Outcome(error=f"internal error: {type(exc).__name__}: {exc}")
        else:
            outcome = task.result()
        report(work, outcome)

    async def _run(self, work: Dispatch) -> Outcome:
        node = work.node
        node_id = node.id
        emit = self.output

        def output(stream: Stream, line: str) -> None:
            emit(node_id, stream, line)

        sink: OutputSink = output
        env = node_env(node, self.base_env, self.ctx.run_id, self.ctx.attempt, self.secrets)
        workdir = os.path.join(self.ctx.workdir, node.workdir) if node.workdir else self.ctx.workdir
        try:
            backend = self._backend(node.target.kind)
            if work.precheck and node.precheck:
                code = await backend.execute(StepRequest(node, node.precheck, env, workdir, purpose="precheck"), sink)
                if code == 0:
                    return Outcome(precheck_done=True)
            command = node.rollback if work.purpose == "rollback" and node.rollback else node.command
            code = await backend.execute(
                StepRequest(node, command, env, workdir, purpose=work.purpose, try_number=work.try_number), sink)
            return Outcome(exit_code=code)
        except BackendError as exc:
            return Outcome(error=str(exc))

    def _backend(self, kind: str) -> Backend:
        backend = self._backends.get(kind)
        if backend is None:
            if self._factory is not None:
                backend = self._factory(kind, self.ctx)
            else:
                from worldtree.backends.registry import create_backend

                backend = create_backend(kind, self.ctx)
            self._backends[kind] = backend
        return backend

    async def close(self) -> None:
        """Close every backend; a broken cleanup is reported as a line of the run, never raised."""
        for kind, backend in self._backends.items():
            try:
                await backend.close()
            except Exception as exc:  # a broken cleanup must not hide the run's result
                self.output("worldtree", "stderr", f"cleanup of {kind} backend failed: {exc}")
        self._backends.clear()


__all__ = ["BackendFactory", "Dispatcher", "LocalDispatcher", "NodeOutput", "Report"]
