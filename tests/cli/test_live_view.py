"""On a TTY `worldtree run` shows the Rich live tree; off a TTY it prints plain lines."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_live_view_on_a_tty(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_RUN_ID"}
    env.update({"WORLDTREE_STORE": f"sqlite:///{tmp_path}/s.db", "COLUMNS": "100", "TERM": "xterm"})
    proc = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "run", str(EXAMPLES / "parallel-stages.yaml")],
                            cwd=tmp_path, env=env, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=30)
    os.close(leader)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, screen
    assert "\x1b[" in screen  # drawn with terminal control sequences
    for label in ("build", "backend", "frontend", "integration", "archive", "succeeded", "parallel-stages"):
        assert label in screen
    assert "[build/backend/step-1] backend built" in screen  # output scrolls above the tree
    assert "5/5" in screen  # the progress bar's count
