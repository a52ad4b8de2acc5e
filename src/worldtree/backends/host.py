"""Host backend: each step a subprocess in its own process group, under the chosen shell.

On Linux the child is started with posix_spawn and watched through a pidfd (see
``backends.spawn``); elsewhere asyncio's subprocess support does the same job, slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import shlex
import shutil
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


#: Words no POSIX shell would change: no quotes, globs, variables, redirections or separators.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")
#: Builtins and keywords that must run inside a shell to mean what they say (echo, printf, test
#: and pwd exist as programs too, but behave differently from the shells' builtins).
_SHELL_ONLY = frozenset({
    '!', '.', ':', '[', '[[', '{', '}', 'alias', 'echo', 'printf', 'test', 'pwd', 'kill', 'bg', 'break',
    'builtin', 'case', 'cd', 'command', 'continue', 'declare', 'do', 'done', 'elif', 'else', 'enable', 'esac',
    'eval', 'exec', 'exit', 'export', 'fc', 'fg', 'fi', 'for', 'function', 'getopts', 'hash', 'history', 'if',
    'jobs', 'let', 'local', 'newgrp', 'readonly', 'read', 'return', 'select', 'set', 'shift', 'shopt',
    'source', 'then', 'time', 'times', 'trap', 'type', 'typeset', 'ulimit', 'umask', 'unalias', 'unset',
    'until', 'wait', 'while',
})


def direct_argv(shell: str, command: str, path: str | None) -> list[str] | None:
    """GNU make's fast path: a one-line command of plain words runs without a shell.

    ``true``, ``make -j4 build`` or ``./deploy.sh prod`` mean the same with or without ``sh -c``,
    and skipping the shell saves a process start per step. Returns the argv with its program
    resolved on the step's PATH, or None when a shell is needed (or the program is not found:
    the shell then reports it as it always does).
    """
    if "\n" in command or " " in shell or os.path.basename(shell) not in _POSIX_SHELLS:
        return None
    words = command.split()
    if not words or words[0] in _SHELL_ONLY or "=" in words[0]:
        return None
    if not all(_PLAIN_WORD.fullmatch(word) for word in words):
        return None
    program = _which(words[0], path)
    return None if program is None else [program, *words[1:]]


@functools.lru_cache(maxsize=512)
def _which(name: str, path: str | None) -> str | None:
    if "/" in name:
        return None  # relative to the step's workdir: leave it to the shell
    return shutil.which(name, path=path)


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
        self._made_dirs: set[str] = set()

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        env = {**self._base_env, **req.env}
        argv = (direct_argv(req.node.shell, req.command, env.get("PATH")) if _USE_SPAWN else None) \
            or shell_argv(req.node.shell, req.command)
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
            if cwd not in self._made_dirs:
                os.makedirs(cwd, exist_ok=True)
                self._made_dirs.add(cwd)
            if _USE_SPAWN:
                return spawn.SpawnedProcess(argv, env, cwd, lambda line: output("stdout", line),
                                            lambda line: output("stderr", line), self.ctx.secret_values)
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
