from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from store_helpers import new_run, start

from worldtree.store import RunStore, open_store
from worldtree.store.tables import attempts

# Starts an attempt, prints its run id, then writes log lines until it is killed.
CHILD = """
import sys, time
from datetime import UTC, datetime
from worldtree.store import LogLine, open_store
store = open_store(sys.argv[1])
run_id = store.create_run(name="doomed", source=None, workdir="/", graph_json="{}", options={})
lease = store.start_attempt(run_id, node_ids=["job/step"])
attempt = lease.attempt
writer = store.writer(run_id, attempt, token=lease.token)
print(run_id, flush=True)
i = 0
while True:
    i += 1
    writer.log(LogLine(run_id, attempt, "job/step", "stdout", f"line {i}", datetime.now(UTC)))
    time.sleep(0.0005)
"""


def test_sigkilled_run_reads_as_interrupted(url: str) -> None:
    with subprocess.Popen([sys.executable, "-c", CHILD, url], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            run_id = child.stdout.readline().strip()
            assert run_id, "the child did not start a run"
            _follow_while_running(url, run_id)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)

    with _opened(url) as store:
        record = store.get_run(run_id)
        assert record is not None and record.state == "interrupted"
        assert [r.state for r in store.list_runs() if r.run_id == run_id] == ["interrupted"]
        lines = store.logs(run_id)
        assert lines, "flushed batches survive the kill"
        assert [x.seq for x in lines] == list(range(1, len(lines) + 1))  # whole batches only

        # A retry supersedes the dead attempt, and its lines follow the old ones.
        second = start(store, run_id, expect_attempt=1)
        assert (second.attempt, second.token) == (2, 2)
        assert store.get_run(run_id).state == "running"  # type: ignore[union-attr]
        with store._engine.connect() as conn:  # type: ignore[attr-defined]
            states = conn.execute(select(attempts.c.number, attempts.c.state)
                                  .where(attempts.c.run_id == run_id).order_by(attempts.c.number)).all()
        assert [tuple(s) for s in states] == [(1, "interrupted"), (2, "running")]


def _follow_while_running(url: str, run_id: str) -> None:
    """What ``worldtree logs --follow`` does: poll after the last seq while another process writes."""
    with _opened(url) as store:
        seen, deadline = 0, time.monotonic() + 10
        while seen < 200 and time.monotonic() < deadline:
            new = store.logs(run_id, after_seq=seen)
            assert [x.seq for x in new] == list(range(seen + 1, seen + 1 + len(new)))
            seen += len(new)
            time.sleep(0.05)
        assert seen >= 200
        alive = store.get_run(run_id)
        assert alive is not None and alive.state == "running"


def test_expired_lease_on_another_host_reads_as_interrupted(store: RunStore) -> None:
    run_id = new_run(store)
    start(store, run_id)
    _set_attempt(store, run_id, hostname="elsewhere", lease_expires_at=datetime.now(UTC) + timedelta(seconds=5))
    assert store.get_run(run_id).state == "running"  # type: ignore[union-attr]
    _set_attempt(store, run_id, hostname="elsewhere", lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert store.get_run(run_id).state == "interrupted"  # type: ignore[union-attr]
    assert store.list_runs()[0].state == "interrupted"


def test_dead_pid_on_this_host_reads_as_interrupted_at_once(store: RunStore) -> None:
    run_id = new_run(store)
    start(store, run_id)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _set_attempt(store, run_id, pid=gone.pid, heartbeat_at=datetime.now(UTC))
    assert store.get_run(run_id).state == "interrupted"  # type: ignore[union-attr]


def _set_attempt(store: RunStore, run_id: str, **values: object) -> None:
    with store._engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(attempts).where(attempts.c.run_id == run_id).values(**values))


class _opened:
    def __init__(self, url: str) -> None:
        self.store = open_store(url)

    def __enter__(self) -> RunStore:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()
