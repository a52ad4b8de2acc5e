"""What an operation may do to a host: a handful of primitives, local or over SSH.

Operations are written once against :class:`Connection`; :class:`LocalConnection` works on
this machine, :class:`worldtree.ops.ssh_connection.SshConnection` over the run's SSH pool
(SFTP for files). Writes are atomic: a temporary file beside the target, its mode set, then
renamed over the target, so a reader never sees half a file and an interrupted write leaves
the old bytes in place.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import stat
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

from worldtree.ops.command import Quoted, ShellCommand, sh

__all__ = ["CommandResult", "Connection", "LocalConnection", "PathState", "read_bounded", "temp_name"]

#: bytes of a command's output kept (the rest is dropped, and the result says so)
OUTPUT_LIMIT = 1 << 20


@dataclass(frozen=True, slots=True)
class PathState:
    """What is at a path now: ``kind`` is absent, file, dir, link or other; ``mode`` the permission bits."""

    kind: str
    mode: int | None = None
    size: int | None = None
    link_target: str | None = None
    uid: int | None = None
    gid: int | None = None

    @property
    def exists(self) -> bool:
        return self.kind != "absent"


ABSENT = PathState("absent")


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


def temp_name(path: str) -> str:
    """A hidden sibling of ``path`` for an atomic write (same directory, so rename is atomic)."""
    p = PurePosixPath(path)
    return str(p.parent / f".{p.name}.wt-{secrets.token_hex(4)}")


def state_from_mode(st_mode: int, size: int | None, link_target: str | None = None,
                    uid: int | None = None, gid: int | None = None) -> PathState:
    if stat.S_ISLNK(st_mode):
        kind = "link"
    elif stat.S_ISDIR(st_mode):
        kind = "dir"
    elif stat.S_ISREG(st_mode):
        kind = "file"
    else:
        kind = "other"
    return PathState(kind, stat.S_IMODE(st_mode), size, link_target, uid, gid)


class Connection(ABC):
    """One host as operations see it. ``name`` is the inventory name (``local`` for this machine)."""

    name: str

    @abstractmethod
    async def stat(self, path: str) -> PathState:
        """The path itself (a symlink is reported as a link, not followed)."""

    @abstractmethod
    async def read(self, path: str) -> bytes: ...

    @abstractmethod
    async def write(self, path: str, data: bytes, mode: int) -> None:
        """Replace ``path`` atomically with ``data`` and permission bits ``mode``."""

    @abstractmethod
    async def mkdir(self, path: str, mode: int) -> None: ...

    @abstractmethod
    async def chmod(self, path: str, mode: int) -> None: ...

    @abstractmethod
    async def symlink(self, target: str, path: str) -> None:
        """Make ``path`` a link to ``target``, replacing what is there atomically."""

    @abstractmethod
    async def remove(self, path: str) -> None:
        """Remove a file, a link or an empty directory."""

    @abstractmethod
    async def run(self, command: ShellCommand, *, timeout: float | None = None,
                  stdin: bytes | None = None) -> CommandResult:
        """Run ``command`` under ``sh -c`` on the host (``stdin``: bytes fed to it, then end of file)."""

    async def chown(self, path: str, uid: int, gid: int) -> None:
        """Give ``path`` (not a link's target) owner ``uid`` and group ``gid`` (-1 keeps one)."""
        owner = f"{'' if uid < 0 else uid}:{'' if gid < 0 else gid}"
        result = await self.run(sh("chown -h", Quoted(owner), "--", Quoted(path)))
        if result.exit_status != 0:
            raise OSError(f"chown {owner} {path}: {result.stderr.strip()[-200:] or 'failed'}")

    async def close(self) -> None:
        """Release what the connection holds (the pool itself is closed by its owner)."""
        return None


class LocalConnection(Connection):
    """This machine. File calls go to a thread: a slow disk must not stall the event loop."""

    def __init__(self, name: str = "local") -> None:
        self.name = name

    async def stat(self, path: str) -> PathState:
        return await asyncio.to_thread(_local_stat, path)

    async def read(self, path: str) -> bytes:
        return await asyncio.to_thread(_read_bytes, path)

    async def write(self, path: str, data: bytes, mode: int) -> None:
        await asyncio.to_thread(_local_write, path, data, mode)

    async def mkdir(self, path: str, mode: int) -> None:
        def make() -> None:
            os.mkdir(path, mode)
            os.chmod(path, mode)  # mkdir's mode passes through the umask

        await asyncio.to_thread(make)

    async def chmod(self, path: str, mode: int) -> None:
        await asyncio.to_thread(os.chmod, path, mode)

    async def chown(self, path: str, uid: int, gid: int) -> None:
        await asyncio.to_thread(os.lchown, path, uid, gid)

    async def symlink(self, target: str, path: str) -> None:
        def link() -> None:
            tmp = temp_name(path)
            os.symlink(target, tmp)
            os.replace(tmp, path)

        await asyncio.to_thread(link)

    async def remove(self, path: str) -> None:
        def rm() -> None:
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)

        await asyncio.to_thread(rm)

    async def run(self, command: ShellCommand, *, timeout: float | None = None,
                  stdin: bytes | None = None) -> CommandResult:
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command.render(),
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        stdout, stderr = proc.stdout, proc.stderr
        assert stdout is not None and stderr is not None

        async def feed() -> None:
            if stdin is not None and proc.stdin is not None:
                try:
                    proc.stdin.write(stdin)
                    await proc.stdin.drain()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the command did not read it all
                proc.stdin.close()

        async def finish() -> tuple[bytes, bytes]:
            out, err, _ = await asyncio.gather(read_bounded(stdout), read_bounded(stderr), feed())
            await proc.wait()
            return out, err

        try:
            out, err = await asyncio.wait_for(finish(), timeout)
        except TimeoutError:
            # the whole session: a shell's children hold the pipes, and asyncio's wait() waits for them
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
            return CommandResult(124, "", f"timed out after {timeout:g} s")
        return CommandResult(proc.returncode if proc.returncode is not None else 1,
                             out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


class _Reader(Protocol):
    async def read(self, n: int = -1, /) -> Any: ...


async def read_bounded(stream: _Reader, limit: int = OUTPUT_LIMIT) -> bytes:
    """Everything ``stream`` says, keeping the first ``limit`` bytes: a command that floods its
    output is drained (so it does not block on a full pipe) without filling memory."""
    kept = bytearray()
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return bytes(kept)
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8", "replace")
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _local_stat(path: str) -> PathState:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ABSENT
    except NotADirectoryError:
        return ABSENT
    target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    return state_from_mode(st.st_mode, st.st_size, target, st.st_uid, st.st_gid)


def _local_write(path: str, data: bytes, mode: int) -> None:
    tmp = temp_name(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
