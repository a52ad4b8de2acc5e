"""Host backend: each step a subprocess in its own process group, under the chosen shell.

On Linux the child is started with posix_spawn and watched through a pidfd (see
``backends.spawn``); elsewhere asyncio's subprocess support does the same job, slower.

What a step may leave behind, and when it dies:

* A step ends when its main process exits and its output pipes close. A process of the step
  that still holds its stdout/stderr ``PIPE_DRAIN_SECONDS`` after the main process exited
  (``(yes &); echo started``) outlives its step: its whole process group is killed then, and
  the step's result is the main process's exit code.
* A background process that let go of the pipes (``server >log 2>&1 &``) may serve later
  steps: it is killed with its group when the run ends (``close``).
* Cancellation (timeout, Ctrl-C, fail-fast): SIGTERM to the group, SIGKILL after the grace.
* If worldtree itself dies (``kill -9``), the run's watchdog (``backends.watchdog``) SIGKILLs
  every group it was told about; ``backends.orphans`` (run by ``retry``) finds what escaped.
  A step is told to the watchdog once it has run ``WATCH_AFTER`` (20 ms): most CI steps end
  sooner, and two pipe writes per step were a tenth of a 2,000-step run. A ``kill -9`` inside
  those first 20 ms leaves the step to the retry's reaper.
* Steps inherit worldtree's environment minus its own variables (``backends.child_env``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from typing import Protocol

from worldtree.backends import child_env, spawn
from worldtree.backends.base import OutputSink, RunContext, StepRequest
from worldtree.backends.command import StepCommand
from worldtree.backends.watchdog import Watchdog
from worldtree.errors import BackendError

_log = logging.getLogger(__name__)
#: A step still running this long after its start is told to the run's watchdog.
WATCH_AFTER = 0.02
#: How long to wait for a finished step's pipes to close (a background child may hold them).
PIPE_DRAIN_SECONDS = 0.25
_USE_SPAWN = spawn.available()


class _Child(Protocol):
    pid: int
    exited: asyncio.Future[int]
    drained: asyncio.Future[None]

    def close_pipes(self) -> None: ...


class _AsyncioChild(asyncio.SubprocessProtocol):
    """Fallback for systems without pidfd: the same interface over asyncio's subprocess transport."""

    def __init__(self, output: OutputSink, needles: list[str] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self.splitters = {1: spawn.LineSplitter(lambda line: output("stdout", line), needles),
                          2: spawn.LineSplitter(lambda line: output("stderr", line), needles)}
        self.open_pipes = 2
        self.transport: asyncio.SubprocessTransport | None = None
        self.pid = 0

    async def start(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.subprocess_exec(
            lambda: self, *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
        self.transport = transport
        self.pid = transport.get_pid()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Called before subprocess_exec returns: a fast child may exit before start() resumes.
        self.transport = transport  # type: ignore[assignment]  # a SubprocessTransport here
        self.pid = self.transport.get_pid() if self.transport is not None else 0

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.splitters[fd].feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.splitters[fd].close()
        self.open_pipes -= 1
        if self.open_pipes == 0 and not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        assert self.transport is not None
        code = self.transport.get_returncode() or 0
        if not self.exited.done():
            self.exited.set_result(128 - code if code < 0 else code)

    def close_pipes(self) -> None:
        for splitter in self.splitters.values():
            splitter.close()
        if self.transport is not None and self.exited.done():
            self.transport.close()


class HostBackend:
    """Runs commands on this machine. See ``worldtree.backends.base`` for the contract."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._base_env = child_env.inherited(os.environ, ctx.inherit_env)
        self._groups: set[int] = set()
        self._watched: set[int] = set()  # groups the watchdog knows
        self._made_dirs: set[str] = set()
        self._watchdog = Watchdog()

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        env = {**self._base_env, **req.env}
        step = StepCommand(req.node.shell, req.command)
        argv = (step.direct_argv(env.get("PATH")) if _USE_SPAWN else None) or step.argv()
        child = await self._start(argv, env, req.workdir, output)
        self._groups.add(child.pid)
        watch = asyncio.get_running_loop().call_later(WATCH_AFTER, self._watch, child.pid)
        try:
            code = await child.exited
            if not child.drained.done():
                try:
                    await asyncio.wait_for(asyncio.shield(child.drained), PIPE_DRAIN_SECONDS)
                except TimeoutError:  # something of the step still holds its output: it ends now
                    self._kill_group(child.pid)
            try:  # keep the group only while something in it still runs (pids get reused)
                os.killpg(child.pid, 0)
            except (ProcessLookupError, PermissionError):
                self._forget(child.pid)
            return code
        except asyncio.CancelledError:
            await self._terminate(child)
            raise
        finally:
            watch.cancel()
            child.close_pipes()

    async def _start(self, argv: list[str], env: dict[str, str], cwd: str, output: OutputSink) -> _Child:
        try:
            if cwd not in self._made_dirs:
                os.makedirs(cwd, exist_ok=True)
                self._made_dirs.add(cwd)
            if _USE_SPAWN:
                return spawn.SpawnedProcess(argv, env, cwd, lambda line: output("stdout", line),
                                            lambda line: output("stderr", line), self.ctx.secret_values,
                                            paused=self.ctx.output_paused)
            child = _AsyncioChild(output, self.ctx.secret_values)
            await child.start(argv, env, cwd)
            return child
        except FileNotFoundError as exc:
            if cwd in self._made_dirs and not os.path.isdir(cwd):  # an earlier step removed it
                self._made_dirs.discard(cwd)
                return await self._start(argv, env, cwd, output)
            raise BackendError(f"cannot start shell {argv[0]!r}: not found ({exc.strerror})") from None
        except OSError as exc:
            raise BackendError(f"cannot start {argv[0]!r} in {cwd}: {exc.strerror}") from None

    async def _terminate(self, child: _Child) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after the grace period."""
        _killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.ctx.grace_seconds
        while not child.exited.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        # The group leader may be gone while its children still run: kill the group regardless.
        self._kill_group(child.pid)
        if not child.exited.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(child.exited), 2.0)

    async def close(self) -> None:
        """Steps may leave background processes (a server for the next step): they end with the run."""
        for pgid in list(self._groups):
            self._kill_group(pgid)
        self._watchdog.close()

    def _watch(self, pgid: int) -> None:
        """Tell the watchdog about a step still running after ``WATCH_AFTER`` (a loop callback)."""
        if pgid not in self._groups:
            return
        try:
            self._watchdog.track(pgid)
            self._watched.add(pgid)
        except OSError as exc:  # the step is already running: end it rather than leave it unguarded
            _log.warning("cannot start the run's watchdog /bin/sh (%s): step killed", exc.strerror)
            self._kill_group(pgid)

    def _forget(self, pgid: int) -> None:
        self._groups.discard(pgid)
        if pgid in self._watched:
            self._watched.discard(pgid)
            self._watchdog.forget(pgid)

    def _kill_group(self, pgid: int) -> None:
        _killpg(pgid, signal.SIGKILL)
        self._forget(pgid)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
