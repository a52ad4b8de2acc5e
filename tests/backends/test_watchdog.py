"""No step outlives the process that runs it: the per-run watchdog (issue 7 §6, kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from process_helpers import alive, read_pid, wait_for

from worldtree.backends.watchdog import Watchdog


def _group() -> subprocess.Popen[bytes]:
    """A process group of two: a shell and its background sleep."""
    return subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60"], start_new_session=True)


def _gone(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None


def test_clean_close_kills_nothing_and_eof_kills_what_is_tracked() -> None:
    kept, forgotten, killed = _group(), _group(), _group()
    dog = Watchdog()
    try:
        dog.track(kept.pid)
        dog.close()  # clean: the watchdog exits and leaves the group alone
        time.sleep(0.3)
        assert not _gone(kept)
        dog = Watchdog()
        dog.track(forgotten.pid)
        dog.track(killed.pid)
        dog.forget(forgotten.pid)
        assert dog._proc is not None
        os.close(dog._fd)  # what the kernel does when worldtree dies: EOF without "."
        dog._fd = -1
        assert wait_for(lambda: _gone(killed), 2.0), "the tracked group survived its runner"
        assert dog._proc.wait(2) == 0
        assert not _gone(forgotten)
    finally:
        for proc in (kept, forgotten, killed):
            if not _gone(proc):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_kill_9_of_worldtree_run_kills_the_running_step(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("""
jobs:
  j:
    steps:
      - run: "sleep 60 & echo $! > bg.pid; echo $$ > main.pid; sleep 60"
""")
    env = {**os.environ, "WORLDTREE_STORE": f"sqlite:///{tmp_path}/wt.db"}
    cli = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "run", "p.yaml"], cwd=tmp_path, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: (tmp_path / "main.pid").exists() and (tmp_path / "bg.pid").exists(), 30), \
            "the step did not start"
        time.sleep(0.1)  # both pid files are complete
        main, bg = read_pid(str(tmp_path / "main.pid")), read_pid(str(tmp_path / "bg.pid"))
        assert alive(main) and alive(bg)
        cli.kill()
        cli.wait(10)
        assert wait_for(lambda: not alive(main) and not alive(bg), 2.0), "the step outlived worldtree"
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        for name in ("main.pid", "bg.pid"):
            if (tmp_path / name).exists() and alive(pid := read_pid(str(tmp_path / name))):
                os.kill(pid, signal.SIGKILL)
