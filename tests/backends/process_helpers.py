"""Process tests run real subprocesses; each is bounded in time so a regression fails, never hangs."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())


def wait_for(predicate: object, seconds: float) -> bool:
    import time

    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))
