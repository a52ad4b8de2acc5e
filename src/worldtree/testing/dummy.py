"""A backend that runs nothing, steered by each step's environment (Woodpecker's dummy backend).

Engine tests use it to script what a step does without starting processes, so they test the
scheduling and not the machine's process table. Variables (from the step's ``environment``):

``SLEEP``              seconds to wait before "exiting" (cancellable, like a real process)
``EXIT_CODE``          exit code of the command (default 0)
``FAIL_TRIES``         the first N tries exit 1, later ones ``EXIT_CODE``
``OUTPUT``             lines to print on stdout (one per line), before sleeping
``BACKEND_ERROR``      raise :class:`BackendError` with this message (the executor cannot run it)
``PRECHECK_EXIT_CODE`` exit code of the precheck (default 1: work not done yet)
``ROLLBACK_EXIT_CODE`` exit code of the rollback (default 0)
``ROLLBACK_SLEEP``     seconds the rollback takes

Every call is recorded in :attr:`DummyBackend.calls` as ``(node id, purpose, try number)`` and
every stop in :attr:`DummyBackend.stopped`, so tests can assert what ran and what was killed.
"""

from __future__ import annotations

import asyncio

from worldtree.backends.base import OutputSink, RunContext, StepRequest
from worldtree.errors import BackendError


class DummyBackend:
    """See the module docstring. One instance may serve every kind of a run."""

    def __init__(self, ctx: RunContext | None = None) -> None:
        self.ctx = ctx
        self.calls: list[tuple[str, str, int]] = []
        self.stopped: list[tuple[str, str]] = []
        self.closed = 0

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        env = req.env
        self.calls.append((req.node.id, req.purpose, req.try_number))
        if req.purpose == "precheck":
            return int(env.get("PRECHECK_EXIT_CODE", "1"))
        if req.purpose == "rollback":
            await self._sleep(req, float(env.get("ROLLBACK_SLEEP", "0")))
            return int(env.get("ROLLBACK_EXIT_CODE", "0"))
        if env.get("BACKEND_ERROR"):
            raise BackendError(env["BACKEND_ERROR"])
        for line in env.get("OUTPUT", "").splitlines():
            output("stdout", line)
        await self._sleep(req, float(env.get("SLEEP", "0")))
        if req.try_number <= int(env.get("FAIL_TRIES", "0")):
            return 1
        return int(env.get("EXIT_CODE", "0"))

    async def _sleep(self, req: StepRequest, seconds: float) -> None:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.stopped.append((req.node.id, req.purpose))
            raise

    async def close(self) -> None:
        self.closed += 1
