"""Start a child process fast and watch it without a child watcher: posix_spawn + pidfd.

Why not ``asyncio.create_subprocess_exec``: ``subprocess.Popen`` re-encodes the whole
environment per call and Python 3.11's default child watcher starts a thread per process.
``posix_spawn`` (vfork/clone in glibc, called through ctypes: see ``_spawn``) plus a pidfd
registered with the event loop is the cheapest way Python has to run thousands of short steps.
Linux >= 5.3 with glibc >= 2.29 or musl >= 1.1.24 only; elsewhere
:func:`available` is false and the host backend falls back to asyncio's subprocess support.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
from collections.abc import Callable

#: How often a paused reader looks again (``backends.base.PAUSE_POLL_SECONDS``; not imported:
#: this module must not depend on the backend contract).
PAUSE_POLL_SECONDS = 0.02
#: Longest line kept whole; longer output is cut into pieces of this size.
LINE_LIMIT = 1 << 20
#: Output pipes join the event loop only if the child is still running this long after its
#: start. Most CI steps are short: their output is read once, when they exit, which saves
#: registering and unregistering two descriptors per step. A longer step streams as usual
#: (at most this much later); one that fills a pipe before then just waits that long.
PIPE_WATCH_DELAY = 0.02
#: Bytes per read. Each read's lines are passed on in one event-loop callback, and a flood of
#: short lines (``yes``: 8,192 lines per 16 KiB) costs the engine ~20 us a line: bigger reads
#: would delay every timer (timeouts, heartbeats) and SIGTERM by that much more.
_READ = 1 << 14
#: Reads of a pipe in one go when its step exits: all a default pipe buffers (64 KiB) and one
#: to see its end, so the common step finishes in one callback. A bound, because a grandchild
#: may keep writing (``yes &``): what comes later goes through the loop's readers.
_DRAIN_READS = 5


def available() -> bool:
    if not hasattr(os, "pidfd_open") or _libc is None:
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


class LineSplitter:
    """Bytes in, whole decoded lines out; a partial line waits for its end (or LINE_LIMIT).

    A line cut into pieces is never cut inside one of ``needles`` (the secret values): the
    engine masks piece by piece, so a secret split across two pieces would leak.
    """

    __slots__ = ("buf", "emit", "needles", "spare")

    def __init__(self, emit: Callable[[str], None], needles: list[str] | None = None) -> None:
        self.emit = emit
        self.buf = bytearray()
        self.needles = [n.encode() for n in needles or [] if 0 < len(n.encode()) < LINE_LIMIT]
        self.spare = max((len(n) for n in self.needles), default=1) - 1

    def feed(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if b"\n" not in data and len(buf) < LINE_LIMIT + self.spare:
            return
        *lines, rest = buf.split(b"\n")
        for line in lines:
            while len(line) > LINE_LIMIT:
                cut = self._cut(line)
                self.emit(line[:cut].decode("utf-8", "replace"))
                line = line[cut:]
            self.emit(line.decode("utf-8", "replace"))
        while len(rest) >= LINE_LIMIT + self.spare:  # an endless line: pass it on in pieces
            cut = self._cut(rest)
            self.emit(rest[:cut].decode("utf-8", "replace"))
            rest = rest[cut:]
        self.buf = bytearray(rest)

    def _cut(self, data: bytes | bytearray) -> int:
        """LINE_LIMIT, or earlier where a needle would straddle it."""
        cut = LINE_LIMIT
        for needle in self.needles:
            at = data.find(needle, LINE_LIMIT - len(needle) + 1, LINE_LIMIT + len(needle) - 1)
            if 0 < at < cut:
                cut = at
        return cut

    def close(self) -> None:
        if self.buf:
            self.emit(self.buf.decode("utf-8", "replace"))
            self.buf = bytearray()


class SpawnedProcess:
    """A child in its own session (so its process group can be killed), output read by the loop."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str,
                 out: Callable[[str], None], err: Callable[[str], None], needles: list[str] | None = None,
                 paused: Callable[[], bool] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self._paused = paused
        self.exited: asyncio.Future[int] = self.loop.create_future()
        self.drained: asyncio.Future[None] = self.loop.create_future()
        r_out, w_out = os.pipe2(os.O_CLOEXEC)
        r_err, w_err = os.pipe2(os.O_CLOEXEC)
        try:
            self.pid = _spawn(argv, env, cwd, w_out, w_err)
        except BaseException:
            for fd in (r_out, w_out, r_err, w_err):
                os.close(fd)
            raise
        os.close(w_out)
        os.close(w_err)
        self._pipes = {r_out: LineSplitter(out, needles), r_err: LineSplitter(err, needles)}
        for fd in self._pipes:
            os.set_blocking(fd, False)
        self._watching = False
        self._watch_timer: asyncio.TimerHandle | None = self.loop.call_later(PIPE_WATCH_DELAY, self._watch_pipes)
        self._pidfd = os.pidfd_open(self.pid)
        self.loop.add_reader(self._pidfd, self._on_exit)

    def _watch_pipes(self) -> None:
        self._watch_timer = None
        if not self._watching:
            self._watching = True
            for fd in self._pipes:
                self.loop.add_reader(fd, self._on_readable, fd)

    def _on_readable(self, fd: int) -> None:
        if self._paused is not None and self._paused():  # the store is behind: let the pipe fill
            self.loop.remove_reader(fd)
            self.loop.call_later(PAUSE_POLL_SECONDS, self._resume, fd)
            return
        self._read_once(fd)

    def _resume(self, fd: int) -> None:
        if fd in self._pipes:
            self.loop.add_reader(fd, self._on_readable, fd)

    def _read_once(self, fd: int) -> bool:
        """Read what is there; False when nothing more can be read now (empty or closed)."""
        try:
            data = os.read(fd, _READ)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if data:
            self._pipes[fd].feed(data)
            return True
        self._close_pipe(fd)
        return False

    def _close_pipe(self, fd: int) -> None:
        splitter = self._pipes.pop(fd, None)
        if splitter is None:
            return
        if self._watching:
            self.loop.remove_reader(fd)
        os.close(fd)
        splitter.close()
        if not self._pipes and not self.drained.done():
            self.drained.set_result(None)

    def _on_exit(self) -> None:
        self.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        try:
            _, status = os.waitpid(self.pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            code = 255
        # Output written just before the exit is already in the pipes: read it now, so the
        # common case (no grandchild holding the pipes) finishes in this one callback.
        if self._watch_timer is not None:
            self._watch_timer.cancel()
        for fd in list(self._pipes):
            for _ in range(_DRAIN_READS):  # what is buffered; a grandchild still writing is
                if fd not in self._pipes or not self._read_once(fd):  # watched below
                    break
        self._watch_pipes()  # pipes a grandchild still holds: read them as they come
        if not self.exited.done():
            self.exited.set_result(128 - code if code < 0 else code)

    def close_pipes(self) -> None:
        """Read what is buffered, then stop reading: a bounded number of reads, because a
        background grandchild may hold the pipes open and write forever (``yes &``)."""
        if self._watch_timer is not None:
            self._watch_timer.cancel()
            self._watch_timer = None
        for fd in list(self._pipes):
            for _ in range(_DRAIN_READS):
                if fd not in self._pipes or not self._read_once(fd):
                    break
            self._close_pipe(fd)


# posix_spawn through libc, because os.posix_spawn has no "chdir in the child" action and
# changing the parent's cwd around the call races every other thread of the process (the
# server runs threads). glibc >= 2.29 and musl >= 1.1.24 have the action as
# posix_spawn_file_actions_addchdir_np; without it ``available()`` is false (asyncio path).
_SETSIGDEF = 0x04  # POSIX_SPAWN_SETSIGDEF, same value in glibc and musl
_SETSID = 0x80  # POSIX_SPAWN_SETSID
#: Opaque libc structs, allocated larger than any libc's (glibc x86_64: 80 and 336 bytes).
_ACTIONS_SIZE = 256
_ATTR_SIZE = 1024


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.posix_spawn_file_actions_addchdir_np  # noqa: B018 - probe: AttributeError if absent
    except (OSError, AttributeError):
        return None
    return libc


_libc = _load_libc()


def _make_attr(libc: ctypes.CDLL) -> ctypes.Array[ctypes.c_char]:
    """Spawn attributes shared by every step (posix_spawn only reads them): a new session, so
    the step's process group can be killed; SIGPIPE and SIGXFSZ back to their defaults, because
    Python ignores them and ignored signals survive exec (``yes | head`` must end quietly)."""
    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    sigs = ctypes.create_string_buffer(_ATTR_SIZE)
    libc.posix_spawnattr_init(attr)
    libc.sigemptyset(sigs)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        libc.sigaddset(sigs, int(sig))
    libc.posix_spawnattr_setsigdefault(attr, sigs)
    libc.posix_spawnattr_setflags(attr, ctypes.c_short(_SETSID | _SETSIGDEF))
    return attr


_attr = _make_attr(_libc) if _libc is not None else None


def _spawn(argv: list[str], env: dict[str, str], cwd: str, w_out: int, w_err: int) -> int:
    """posix_spawnp(argv) in a new session with stdin from /dev/null, stdout/stderr to the
    pipes and ``cwd`` as its working directory; the caller's cwd never changes."""
    if cwd == os.getcwd():  # the common case needs no chdir: CPython's own call is cheaper than ctypes
        return os.posix_spawnp(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, w_out, 1), (os.POSIX_SPAWN_DUP2, w_err, 2)],
            setsid=True, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
    assert _libc is not None and _attr is not None
    libc = _libc
    args = [os.fsencode(a) for a in argv]
    c_argv = (ctypes.c_char_p * (len(args) + 1))(*args)
    c_envp = (ctypes.c_char_p * (len(env) + 1))(*[os.fsencode(f"{k}={v}") for k, v in env.items()])
    actions = ctypes.create_string_buffer(_ACTIONS_SIZE)
    pid = ctypes.c_int()
    libc.posix_spawn_file_actions_init(actions)
    try:
        if (libc.posix_spawn_file_actions_addopen(actions, 0, b"/dev/null", os.O_RDONLY, 0)
                or libc.posix_spawn_file_actions_adddup2(actions, w_out, 1)
                or libc.posix_spawn_file_actions_adddup2(actions, w_err, 2)
                or libc.posix_spawn_file_actions_addchdir_np(actions, os.fsencode(cwd))):
            raise MemoryError("posix_spawn file actions")
        err = libc.posix_spawnp(ctypes.byref(pid), args[0], actions, _attr, c_argv, c_envp)
    finally:
        libc.posix_spawn_file_actions_destroy(actions)
    if err:
        raise OSError(err, os.strerror(err), argv[0])  # FileNotFoundError for ENOENT, as os.posix_spawnp
    return pid.value
