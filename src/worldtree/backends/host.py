"""Host backend: each step a subprocess in its own process group, under the chosen shell.

Output is split into lines inside a SubprocessProtocol (no StreamReader tasks per process):
spawning thousands of ``true`` steps is dominated by fork/exec, not by our bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time

from worldtree.backends.base import OutputSink, RunContext, StepRequest
from worldtree.errors import BackendError

#: Longest line kept whole; longer output is cut into pieces of this size.
LINE_LIMIT = 1 << 20
#: How long to wait for a finished step's pipes to close (a background child may hold them).
PIPE_DRAIN_SECONDS = 0.25
_POSIX_SHELLS = {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"}
_FDS = {1: "stdout", 2: "stderr"}


def shell_argv(shell: str, command: str) -> list[str]:
    """``sh`` -> ``sh -e -c CMD`` (stop at the first failing line, as CI users expect);
    a shell given with options (``bash -eo pipefail``) is used as written."""
    parts = shlex.split(shell) or ["sh"]
    if len(parts) == 1 and os.path.basename(parts[0]) in _POSIX_SHELLS:
        parts.append("-e")
    return [*parts, "-c", command]


class _LineProtocol(asyncio.SubprocessProtocol):
    def __init__(self, output: OutputSink, loop: asyncio.AbstractEventLoop) -> None:
        self.output = output
        self.buffers = {1: bytearray(), 2: bytearray()}
        self.open_pipes = 2
        self.exited = loop.create_future()
        self.drained = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        buf = self.buffers[fd]
        buf += data
        if b"\n" not in data and len(buf) < LINE_LIMIT:
            return
        *lines, rest = buf.split(b"\n")
        stream = _FDS[fd]
        for line in lines:
            for start in range(0, max(len(line), 1), LINE_LIMIT):
                self.output(stream, line[start:start + LINE_LIMIT].decode("utf-8", "replace"))  # type: ignore[arg-type]
        if len(rest) >= LINE_LIMIT:
            self.output(stream, rest.decode("utf-8", "replace"))  # type: ignore[arg-type]
            rest = bytearray()
        self.buffers[fd] = bytearray(rest)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in self.buffers:
            self._flush(fd)
            self.open_pipes -= 1
            if self.open_pipes == 0 and not self.drained.done():
                self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def _flush(self, fd: int) -> None:
        buf = self.buffers.get(fd)
        if buf:
            self.output(_FDS[fd], buf.decode("utf-8", "replace"))  # type: ignore[arg-type]
            self.buffers[fd] = bytearray()


class HostBackend:
    """Runs commands on this machine. See ``worldtree.backends.base`` for the contract."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._base_env = dict(os.environ)
        self._groups: set[int] = set()

    async def execute(self, req: StepRequest, output: OutputSink) -> int:
        loop = asyncio.get_running_loop()
        proto = _LineProtocol(output, loop)
        argv = shell_argv(req.node.shell, req.command)
        env = {**self._base_env, **req.env}
        try:
            os.makedirs(req.workdir, exist_ok=True)
            transport, _ = await loop.subprocess_exec(
                lambda: proto, *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd=req.workdir, env=env, start_new_session=True)
        except FileNotFoundError as exc:
            raise BackendError(f"cannot start shell {argv[0]!r}: not found ({exc.strerror})") from None
        except OSError as exc:
            raise BackendError(f"cannot start {argv[0]!r} in {req.workdir}: {exc.strerror}") from None
        pid = transport.get_pid()
        self._groups.add(pid)
        try:
            await proto.exited
            if not proto.drained.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(proto.drained), PIPE_DRAIN_SECONDS)
            code = transport.get_returncode()
            try:  # keep the group only while something in it still runs (pids get reused)
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                self._groups.discard(pid)
            return 128 + -code if code is not None and code < 0 else (code or 0)
        except asyncio.CancelledError:
            await self._terminate(pid, proto)
            raise
        finally:
            for fd in (1, 2):
                proto._flush(fd)
            transport.close()

    async def _terminate(self, pgid: int, proto: _LineProtocol) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after the grace period."""
        _killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + self.ctx.grace_seconds
        while not proto.exited.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        # The group leader may be gone while its children still run: kill the group regardless.
        _killpg(pgid, signal.SIGKILL)
        self._groups.discard(pgid)
        if not proto.exited.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proto.exited), 2.0)

    async def close(self) -> None:
        """Steps may leave background processes (a server for the next step): they end with the run."""
        for pgid in list(self._groups):
            _killpg(pgid, signal.SIGKILL)
        self._groups.clear()


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
