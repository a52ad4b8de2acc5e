"""An SSH host as a :class:`~worldtree.ops.connection.Connection`: SFTP for files, exec for commands.

One SFTP session per host is opened on first use and kept for the apply (each file call is
then one round trip, no new channel); commands take a channel slot of the run's pool like
any step. Errors name the host and never carry a credential.
"""

from __future__ import annotations

import asyncio
import shlex
import stat
from typing import Any

import asyncssh

from worldtree.connectors.ssh.pool import SshPool, open_channel, translate_error
from worldtree.connectors.ssh.target import SshTarget
from worldtree.errors import BackendError
from worldtree.ops.command import ShellCommand
from worldtree.ops.connection import (
    ABSENT,
    CommandResult,
    Connection,
    PathState,
    read_bounded,
    state_from_mode,
    temp_name,
)

__all__ = ["SshConnection"]


class SshConnection(Connection):
    def __init__(self, pool: SshPool, target: SshTarget) -> None:
        self.pool = pool
        self.target = target
        self.name = target.label
        self._sftp: asyncssh.SFTPClient | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> asyncssh.SFTPClient:
        async with self._lock:
            if self._sftp is None:
                try:
                    conn = await self.pool.connection(self.target)
                    self._sftp = await open_channel(conn, conn.start_sftp_client)
                except (asyncssh.Error, OSError) as exc:
                    raise translate_error(exc, self.target, self.pool.secret_values) from None
            return self._sftp

    def _fail(self, what: str, exc: BaseException) -> BackendError:
        reason = exc.reason if isinstance(exc, asyncssh.Error) else (getattr(exc, "strerror", None) or str(exc))
        return BackendError(f"ssh {self.name}: {what}: {reason}")

    async def stat(self, path: str) -> PathState:
        sftp = await self._client()
        try:
            attrs = await sftp.lstat(path)
        except asyncssh.SFTPNoSuchFile:
            return ABSENT
        except asyncssh.SFTPError as exc:
            raise self._fail(f"stat {path}", exc) from None
        mode = attrs.permissions or 0
        target = None
        if stat.S_ISLNK(mode):
            try:
                target = await sftp.readlink(path)
            except asyncssh.SFTPError as exc:
                raise self._fail(f"readlink {path}", exc) from None
        return state_from_mode(mode, attrs.size, target, attrs.uid, attrs.gid)

    async def read(self, path: str) -> bytes:
        sftp = await self._client()
        try:
            async with sftp.open(path, "rb") as fh:
                data: Any = await fh.read()
        except asyncssh.SFTPError as exc:
            raise self._fail(f"read {path}", exc) from None
        return bytes(data)

    async def write(self, path: str, data: bytes, mode: int) -> None:
        sftp = await self._client()
        tmp = temp_name(path)
        try:
            async with sftp.open(tmp, "wb", asyncssh.SFTPAttrs(permissions=0o600)) as fh:
                await fh.write(data)
            await sftp.chmod(tmp, mode)
            await sftp.posix_rename(tmp, path)
        except asyncssh.SFTPError as exc:
            try:
                await sftp.remove(tmp)
            except asyncssh.SFTPError:
                pass
            raise self._fail(f"write {path}", exc) from None

    async def mkdir(self, path: str, mode: int) -> None:
        sftp = await self._client()
        try:
            await sftp.mkdir(path, asyncssh.SFTPAttrs(permissions=mode))
            await sftp.chmod(path, mode)  # the server applies its umask to mkdir's mode
        except asyncssh.SFTPError as exc:
            raise self._fail(f"mkdir {path}", exc) from None

    async def chmod(self, path: str, mode: int) -> None:
        sftp = await self._client()
        try:
            await sftp.chmod(path, mode)
        except asyncssh.SFTPError as exc:
            raise self._fail(f"chmod {path}", exc) from None

    async def chown(self, path: str, uid: int, gid: int) -> None:
        sftp = await self._client()
        try:
            if uid < 0 or gid < 0:  # SFTP v3 sets both: keep the one not given
                attrs = await sftp.lstat(path)
                uid = attrs.uid if uid < 0 and attrs.uid is not None else uid
                gid = attrs.gid if gid < 0 and attrs.gid is not None else gid
            await sftp.chown(path, uid, gid)
        except asyncssh.SFTPError as exc:
            raise self._fail(f"chown {path}", exc) from None

    async def symlink(self, target: str, path: str) -> None:
        sftp = await self._client()
        tmp = temp_name(path)
        try:
            await sftp.symlink(target, tmp)
            await sftp.posix_rename(tmp, path)
        except asyncssh.SFTPError as exc:
            raise self._fail(f"symlink {path}", exc) from None

    async def remove(self, path: str) -> None:
        sftp = await self._client()
        try:
            attrs = await sftp.lstat(path)
            if stat.S_ISDIR(attrs.permissions or 0):
                await sftp.rmdir(path)
            else:
                await sftp.remove(path)
        except asyncssh.SFTPError as exc:
            raise self._fail(f"remove {path}", exc) from None

    async def run(self, command: ShellCommand, *, timeout: float | None = None,
                  stdin: bytes | None = None) -> CommandResult:
        """Run ``command``; with ``timeout`` the host's ``timeout`` utility stops it and its children
        (closing a channel leaves a remote process running), and the wait here gives up a little later
        in case the host has no such utility."""
        line = command.render()
        if timeout is not None:
            line = f"timeout -k 2 {timeout:g} sh -c {shlex.quote(line)}"

        async def go(conn: asyncssh.SSHClientConnection) -> CommandResult:
            proc = await open_channel(conn, lambda: conn.create_process(
                line, stdin=asyncssh.DEVNULL if stdin is None else asyncssh.PIPE, encoding=None))
            if stdin is not None:
                proc.stdin.write(stdin)
                proc.stdin.write_eof()
            try:
                out, err = await asyncio.gather(read_bounded(proc.stdout), read_bounded(proc.stderr))
                await proc.wait_closed()
            finally:
                proc.close()
            status = proc.exit_status if proc.exit_status is not None else 255
            return CommandResult(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

        try:
            async with self.pool.session(self.target) as conn:
                result = await asyncio.wait_for(go(conn), None if timeout is None else timeout + 5)
        except TimeoutError:
            return CommandResult(124, "", f"timed out after {timeout:g} s")
        except (asyncssh.Error, OSError) as exc:
            raise translate_error(exc, self.target, self.pool.secret_values) from None
        if timeout is not None and result.exit_status in (124, 137):
            return CommandResult(124, result.stdout, f"timed out after {timeout:g} s")
        return result

    async def close(self) -> None:
        if self._sftp is not None:
            self._sftp.exit()
            self._sftp = None
