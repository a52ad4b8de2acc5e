"""A store that stops taking writes (another connection holds a lock) must end the run as ``error``
within seconds, loudly, with no step left running.

Found by attack (issue 7), fixed: the writer noticed after 5 s and cancelled the steps, but the process
then waits for the lock to go away: on SQLite three busy timeouts in a row (the flushing thread's
batch, ``close()``'s retry of it, ``finish_attempt``: about 90 s), on PostgreSQL for as long as the
lock is held (no ``lock_timeout`` on the writer's connection). Meanwhile the lease runs out and
``worldtree runs`` calls the live run ``interrupted`` (30 s on), which the issue forbids.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from attack_helpers import Cli

#: How long the run may take to end after its store stopped taking writes (fault after 5 s, grace 5 s).
ENDS_WITHIN = 20.0

PIPELINE = """\
name: store-lock
stages:
  - name: s
    jobs:
      - name: j
        steps:
          - name: talk
            command: for i in $(seq 1 1200); do echo "line $i"; sleep 0.05; done
"""


@contextmanager
def locked(cli: Cli) -> Iterator[None]:
    """Hold a write lock on the run store from another connection (as a stuck admin session would)."""
    if cli.kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(cli.store.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        import psycopg

        with psycopg.connect(cli.store.replace("postgresql+psycopg://", "postgresql://", 1)) as pg:
            pg.execute("SELECT id FROM runs FOR UPDATE")
            pg.execute("SELECT run_id FROM attempts FOR UPDATE")
            try:
                yield
            finally:
                pg.rollback()


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


@pytest.mark.timeout(120)
def test_run_ends_as_error_within_seconds_when_the_store_is_locked(cli: Cli) -> None:
    cli.cwd.joinpath("p.yaml").write_text(PIPELINE)
    out = cli.cwd / "run.out"
    proc = cli.popen("run", "p.yaml", out=out)
    try:
        assert wait_for(lambda: out.read_bytes().count(b"line ") >= 5, 30), out.read_text()
        with locked(cli):
            locked_at = time.monotonic()
            ended = wait_for(lambda: proc.poll() is not None, ENDS_WITHIN)
            took = time.monotonic() - locked_at
            if not ended:
                proc.kill()
        assert ended, f"worldtree run still alive {took:.0f} s after the store stopped taking writes"
        assert proc.returncode == 1
        text = out.read_text()
        assert "store" in text and "error" in text, text[-2000:]
        runs = json.loads(cli("runs", "--json").stdout)
        assert runs[0]["state"] in ("error", "interrupted"), runs
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
