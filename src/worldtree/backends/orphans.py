"""Find and end what an earlier attempt of a run left running on this machine.

The watchdog (``backends.watchdog``) kills a run's process groups when worldtree dies, but a
step may have left its group (``setsid``), or the watchdog itself may have been killed. Every
host step starts with ``WORLDTREE_RUN_ID`` in its environment and its descendants inherit it,
so ``/proc/<pid>/environ`` names a run's processes whatever their group. ``retry`` calls
:func:`reap` before it starts a new attempt: no node may run twice side by side.

Limits: Linux ``/proc`` only (elsewhere nothing is found); only processes of this user (or all,
as root) can be read; ``environ`` is the environment a process was started with, so a
descendant started with a cleared environment (``env -i``) is not found.
"""

from __future__ import annotations

import os
import signal
import time

_PROC = "/proc"
_VAR = b"WORLDTREE_RUN_ID="


#: After SIGKILL, how long to wait for the processes to be gone before returning anyway.
_KILL_WAIT = 2.0


def live_step_processes(run_id: str) -> list[int]:
    """Pids of the live processes started (directly or not) by a step of ``run_id``."""
    try:
        names = os.listdir(_PROC)
    except OSError:
        return []
    me = os.getpid()
    return sorted(pid for pid in (int(n) for n in names if n.isdigit()) if pid != me and _is_step(pid, run_id))


def reap(run_id: str, grace: float) -> int:
    """SIGTERM every live process of ``run_id``, SIGKILL what is left (and whatever they started
    meanwhile) after ``grace`` seconds, and wait until they are gone; return how many there were.
    Returns 0 at once when there are none."""
    seen = set(live_step_processes(run_id))
    for pid in seen:
        _signal(pid, signal.SIGTERM)
    _wait_gone(run_id, grace)
    for _ in range(3):  # a dying step may still start something: kill until nothing is left
        left = live_step_processes(run_id)
        if not left:
            break
        seen.update(left)
        for pid in left:
            _signal(pid, signal.SIGKILL)
        _wait_gone(run_id, _KILL_WAIT)
    return len(seen)


def _wait_gone(run_id: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while live_step_processes(run_id) and time.monotonic() < deadline:
        time.sleep(0.02)


def _is_step(pid: int, run_id: str) -> bool:
    try:
        with open(f"{_PROC}/{pid}/environ", "rb") as f:
            environ = f.read()
    except OSError:  # gone, or another user's
        return False
    # A zombie's environ reads empty: it is dead already.
    return _VAR + os.fsencode(run_id) in environ.split(b"\0")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
