"""One watchdog per run, so that no step outlives the process that runs it.

Steps run in sessions of their own (their process groups must be killable as a whole), so
nothing the kernel does on its own ends them when worldtree dies: after ``kill -9`` of
``worldtree run`` they are reparented to PID 1 and go on, and a ``retry`` would run them a
second time beside the old copy. ``PR_SET_PDEATHSIG`` would have to be set in each child
(posix_spawn cannot) and fires on the death of the spawning *thread*, not process.

So a run starts, on its first step, one ``/bin/sh`` (about 1 MB, no Python) reading lines from
a pipe whose write end only this process holds (close-on-exec, never inherited by steps):

* ``+PGID`` a step's process group to kill if worldtree dies; ``-PGID`` forget it (it is gone:
  its number may be reused by another program);
* ``.`` worldtree closes cleanly (it killed what had to die): exit without killing;
* end of file without ``.``: worldtree died. SIGKILL every group still listed, then exit.

Per step that costs one short ``write`` for the start and one for the end. The watchdog sits in
a session of its own and ignores SIGINT/SIGTERM/SIGHUP, so the Ctrl-C or ``kill`` of a terminal's
process group that ends worldtree does not end it first.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

_log = logging.getLogger(__name__)

# Each group is a variable g<PGID> (set or unset), so forgetting one costs no subshell.
_SCRIPT = r"""
trap '' INT TERM HUP
listed=
while read -r line; do
  g=${line#?}
  case $line in
    +*) eval "g$g=1"; listed="$listed $g" ;;
    -*) unset "g$g" ;;
    .) exit 0 ;;
  esac
done
for g in $listed; do
  eval "[ -n \"\${g$g-}\" ]" && kill -9 "-$g" 2>/dev/null
done
exit 0
"""


class Watchdog:
    """Started lazily by :meth:`track`; :meth:`close` ends it without killing anything."""

    def __init__(self) -> None:
        self._fd = -1
        self._proc: subprocess.Popen[bytes] | None = None

    def track(self, pgid: int) -> None:
        """Kill group ``pgid`` if this process dies before :meth:`forget` or :meth:`close`."""
        if self._proc is None:
            self._start()
        self._send(b"+%d\n" % pgid)

    def forget(self, pgid: int) -> None:
        """``pgid`` has ended (or was killed): never kill that number."""
        if self._fd >= 0:
            self._send(b"-%d\n" % pgid)

    def close(self) -> None:
        """Tell the watchdog worldtree is done, then reap it. Idempotent."""
        if self._fd >= 0:
            self._send(b".\n")
            os.close(self._fd)
            self._fd = -1
        if self._proc is not None:
            import subprocess

            try:
                self._proc.wait(timeout=2)  # it reads "." and exits: milliseconds
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def _start(self) -> None:
        import subprocess  # only runs with a step past WATCH_AFTER pay for importing it

        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", _SCRIPT], stdin=read_end, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, cwd="/", env={"PATH": "/usr/bin:/bin"}, start_new_session=True)
        except OSError:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._fd = write_end

    def _send(self, data: bytes) -> None:
        # The lines are a few bytes and the pipe holds 64 KiB, so the write does not block as
        # long as the watchdog reads; if it was killed, steps lose that protection, not the run.
        if self._fd < 0:
            return
        try:
            os.write(self._fd, data)
        except OSError as exc:
            _log.warning("run watchdog gone (%s): steps are no longer killed if worldtree dies", exc)
            os.close(self._fd)
            self._fd = -1
