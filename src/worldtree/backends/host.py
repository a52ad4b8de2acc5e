"""Host backend: each step a subprocess in its own process group, under the chosen shell.

On Linux the child is started with posix_spawn and watched through a pidfd (see
``backends.spawn``); elsewhere asyncio's subprocess support does the same job, slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from typing import Protocol

from worldtree.backends import spawn
from worldtree.backends.base import OutputSink, RunContext, StepRequest
from worldtree.errors import BackendError

#: How long to wait for a finished step's pipes to close (a background child may hold them).
PIPE_DRAIN_SECONDS = 0.25
_POSIX_SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"}
_USE_SPAWN = spawn.available()


def shell_argv(shell: str, command: str) -> list[str]:
    """``sh`` -> ``sh -e -c CMD`` (stop at the first failing line, as CI users expect);
    a shell given with options (``bash -eo pipefail``) is used as written."""
    parts = shlex.split(shell) or ["sh"]
    if len(parts) == 1 and os.path.basename(parts[0]) in _POSIX_SHELLS:
        parts.append("-e")
    return [*parts, "-c", command]


class _Child(Protocol):
    pid: int
    exited: asyncio.Future[int]
    drained: asyncio.Future[None]

    def close_pipes(self) -> None: ...


class _AsyncioChild(asyncio.SubprocessProtocol):
    """Fallback for systems without pidfd: the same interface over asyncio's subprocess transport."""

    def __init__(self, output: OutputSink) -> None:
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self.splitters = {1: spawn.LineSplitter(lambda line: output("stdout", line)),
                          2: spawn.LineSplitter(lambda line: output("stderr", line))}
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
        self._base_env = dict(os.environ)
        self._groups: set[int] = set()

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        argv = shell_argv(req.node.shell, req.command)
        env = {**self._base_env, **req.env}
        child = await self._start(argv, env, req.workdir, output)
        self._groups.add(child.pid)
        try:
            code = await child.exited
            if not child.drained.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(child.drained), PIPE_DRAIN_SECONDS)
            try:  # keep the group only while something in it still runs (pids get reused)
                os.killpg(child.pid, 0)
            except (ProcessLookupError, PermissionError):
                self._groups.discard(child.pid)
            return code
        except asyncio.CancelledError:
            await self._terminate(child)
            raise
        finally:
            child.close_pipes()

    async def _start(self, argv: list[str], env: dict[str, str], cwd: str, output: OutputSink) -> _Child:
        try:
            os.makedirs(cwd, exist_ok=True)
            if _USE_SPAWN:
                return spawn.SpawnedProcess(argv, env, cwd, lambda line: output("stdout", line),
                                            lambda line: output("stderr", line))
            child = _AsyncioChild(output)
            await child.start(argv, env, cwd)
            return child
        except FileNotFoundError as exc:
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
        _killpg(child.pid, signal.SIGKILL)
        self._groups.discard(child.pid)
        if not child.exited.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(child.exited), 2.0)

    async def close(self) -> None:
        """Steps may leave background processes (a server for the next step): they end with the run."""
        for pgid in list(self._groups):
            _killpg(pgid, signal.SIGKILL)
        self._groups.clear()


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
