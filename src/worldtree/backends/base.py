"""The contract between the engine and every place a node can run.

A backend is created lazily, once per run, the first time a node of its ``kind`` is ready.
Call order, per run::

    backend = Factory(ctx)          # cheap; no I/O
    await backend.execute(req, out) # many times, concurrently (up to the engine's --concurrency)
    await backend.close()           # exactly once at the end of the run, whatever happened

Rules every backend keeps:

* ``execute`` returns the exit code of ``req.command``. A non-zero code is a *failure* of the
  user's command, not an error. Raise :class:`~worldtree.errors.BackendError` (or a subclass)
  when the backend itself cannot run the command (image missing, host unreachable, auth
  refused); its message is shown to the user as the node's error, so make it one clear line
  that names the image/host, never a credential.
* Output goes line by line, without the trailing newline, to ``output(stream, line)`` as it
  arrives; ``stream`` is ``"stdout"`` or ``"stderr"``. The engine masks secrets; a backend
  must not log output or the environment anywhere else.
* Cancellation: the engine cancels the ``execute`` task on timeout, Ctrl-C/SIGTERM and
  fail-fast. On ``asyncio.CancelledError`` stop the work for real (process group /
  container / remote process: SIGTERM, then SIGKILL after ``ctx.grace_seconds``), release
  what the step held, then re-raise. Nothing may keep running.
* ``close`` must be idempotent and safe to call even if no ``execute`` ever ran or one
  failed half way: it removes what the run created (containers, networks, connections).
* ``req.env`` holds the pipeline's environment (declared, injected ``PIPELINE_*`` variables,
  secrets). It does *not* hold the host's environment: the host backend adds that beneath,
  as a shell would; containers and remote hosts get only ``req.env`` (plus what
  ``ctx.allow_env`` lets through).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from worldtree.model.graph import ExecutionGraph, Node

Stream = Literal["stdout", "stderr"]
OutputSink = Callable[[Stream, str], None]
Purpose = Literal["run", "precheck", "rollback"]


@dataclass
class RunContext:
    """What every backend of one run shares."""

    run_id: str
    attempt: int
    workdir: str
    graph: ExecutionGraph
    grace_seconds: float = 5.0
    #: host variables that may reach containers/remote steps (seed 003 §15.1 ``allow-env``)
    allow_env: list[str] = field(default_factory=list)
    allow_all_env: bool = False
    #: worldtree's own config (runner size map, language images, inventory path, ...)
    config: dict[str, object] = field(default_factory=dict)
    #: secret values, for backends that must scrub their own error messages
    secret_values: list[str] = field(default_factory=list)
    #: backpressure: true while the run's store is behind on output. Backends stop reading a
    #: step's output meanwhile (its writes then block on the full pipe), so a step that prints
    #: faster than the store writes slows down instead of filling memory or failing the run.
    output_paused: Callable[[], bool] | None = None
    #: what host steps inherit of worldtree's environment (``backends.child_env``): "all" but
    #: ``WORLDTREE_*`` for local runs; "allowlist" for server/agent executors
    inherit_env: Literal["all", "allowlist"] = "all"


@dataclass
class StepRequest:
    """One command to run for one node: its main command, its precheck, or its rollback."""

    node: Node
    command: str
    env: dict[str, str]
    workdir: str  # absolute; the node's workdir resolved against the run's workdir
    purpose: Purpose = "run"
    try_number: int = 1


class Backend(Protocol):
    """See the module docstring for the contract."""

    async def execute(self, req: StepRequest, output: OutputSink) -> int: ...

    async def close(self) -> None: ...


BackendFactory = Callable[[RunContext], Backend]


#: How often a paused reader looks again whether the store has caught up.
PAUSE_POLL_SECONDS = 0.02


async def output_room(paused: Callable[[], bool] | None) -> None:
    """Wait while ``paused()`` says the store is behind (see ``RunContext.output_paused``)."""
    while paused is not None and paused():
        await asyncio.sleep(PAUSE_POLL_SECONDS)
