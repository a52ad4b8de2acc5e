"""File transfer over a pooled connection (SFTP), for templates and artifacts of later issues."""

from __future__ import annotations

from pathlib import Path

import asyncssh

from worldtree.connectors.ssh.target import SshTarget
from worldtree.errors import BackendError

__all__ = ["download", "upload"]


async def upload(conn: asyncssh.SSHClientConnection, target: SshTarget, local: str | Path, remote: str, *,
                 mode: int | None = None) -> None:
    """Copy the file or directory ``local`` to ``remote`` (overwritten), optionally ``chmod`` it."""
    try:
        async with conn.start_sftp_client() as sftp:
            await sftp.put(str(local), remote, recurse=Path(local).is_dir(), preserve=False)
            if mode is not None:
                await sftp.chmod(remote, mode)
    except (asyncssh.Error, OSError) as exc:
        raise BackendError(f"ssh {target.label}: upload of {Path(local).name} to {remote} failed: "
                           f"{_reason(exc)}") from None


async def download(conn: asyncssh.SSHClientConnection, target: SshTarget, remote: str,
                   local: str | Path) -> None:
    """Copy the remote file or directory ``remote`` to ``local``."""
    try:
        async with conn.start_sftp_client() as sftp:
            recurse = await sftp.isdir(remote)
            await sftp.get(remote, str(local), recurse=recurse, preserve=False)
    except (asyncssh.Error, OSError) as exc:
        raise BackendError(f"ssh {target.label}: download of {remote} failed: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.Error):
        return exc.reason
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
