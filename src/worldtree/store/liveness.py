"""Is an attempt (or node claim) still held? Its lease, and on this host its process, say so.

Decided when reading and when claiming, never written back by a reader: a reader cannot kill a
live run by mistake. Another host can only be judged by its lease (renewed by the writer's
heartbeat); on this host a dead (or zombie) pid ends the lease at once.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime

HOSTNAME = socket.gethostname()


def owner_of(pid: int, hostname: str = HOSTNAME) -> str:
    return f"{pid}@{hostname}"


def is_live(pid: int | None, hostname: str | None, lease_expires_at: datetime | None, now: datetime) -> bool:
    """True while a ``running`` attempt's lease holds and (same host) its process is alive."""
    if lease_expires_at is None or pid is None or lease_expires_at <= now:
        return False
    return hostname != HOSTNAME or pid_alive(pid)


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:  # a killed child its parent has not reaped yet still answers kill(0)
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
