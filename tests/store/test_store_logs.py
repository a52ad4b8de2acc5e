from __future__ import annotations

import time
from datetime import UTC
from typing import Any

import pytest
from store_helpers import line, new_run, start, writer

from worldtree.errors import StoreError
from worldtree.store import RunStore
from worldtree.store import batching as writer_module


def _fill(store: RunStore) -> str:
    run_id = new_run(store)
    lease = start(store, run_id)
    attempt, w = lease.attempt, writer(store, lease)
    for node, text in [("build/compile", "gcc"), ("build/link", "ld"), ("build2/x", "other job"),
                       ("build", "job-level line"), ("build/compile", "done")]:
        w.log(line(run_id, attempt, node, text))
    w.log(line(run_id, attempt, "build/compile", "warning", stream="stderr"))
    w.close()
    return run_id


def test_logs_whole_run_in_order(store: RunStore) -> None:
    run_id = _fill(store)
    lines = store.logs(run_id)
    assert [x.line for x in lines] == ["gcc", "ld", "other job", "job-level line", "done", "warning"]
    assert [x.seq for x in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[-1].stream == "stderr" and lines[0].ts.tzinfo is UTC
    assert all(x.run_id == run_id and x.attempt == 1 for x in lines)


def test_logs_by_node_and_by_job_prefix(store: RunStore) -> None:
    run_id = _fill(store)
    assert [x.line for x in store.logs(run_id, node="build/compile")] == ["gcc", "done", "warning"]
    # A job id matches itself and its steps, never a sibling that merely starts alike.
    job = ["gcc", "ld", "job-level line", "done", "warning"]
    assert [x.line for x in store.logs(run_id, node="build")] == job
    assert store.logs(run_id, node="buil") == []
    assert store.logs(run_id, node="build/%") == []


def test_logs_after_seq_and_limit(store: RunStore) -> None:
    run_id = _fill(store)
    assert [x.seq for x in store.logs(run_id, after_seq=4)] == [5, 6]
    assert [x.seq for x in store.logs(run_id, after_seq=1, limit=2)] == [2, 3]
    assert [x.line for x in store.logs(run_id, node="build/compile", after_seq=1)] == ["done", "warning"]
    assert store.logs(run_id, after_seq=6) == []
    assert store.logs("no-such-run") == []


def test_seq_continues_across_attempts(store: RunStore) -> None:
    run_id = _fill(store)
    store.finish_attempt(run_id, 1, "failed", token=1)
    lease = start(store, run_id)
    second, w = lease.attempt, writer(store, lease)
    w.log(line(run_id, second, "build/compile", "again"))
    w.close()
    lines = store.logs(run_id)
    assert [x.seq for x in lines] == list(range(1, 8))
    assert (lines[-1].line, lines[-1].attempt) == ("again", 2)


def test_writer_batches_flushes_and_closes_idempotently(store: RunStore) -> None:
    run_id = new_run(store)
    lease = start(store, run_id)
    attempt, w = lease.attempt, writer(store, lease)
    for i in range(1200):  # more than one batch
        w.log(line(run_id, attempt, f"job/step-{i % 7}", f"line {i}"))
    deadline = time.monotonic() + 5
    while len(store.logs(run_id)) < 1200 and time.monotonic() < deadline:
        time.sleep(0.02)  # the background thread writes without being asked
    assert len(store.logs(run_id)) == 1200
    w.log(line(run_id, attempt, "job/step-0", "last"))
    w.flush()
    assert store.logs(run_id, after_seq=1200)[0].line == "last"
    w.close()
    w.close()
    with pytest.raises(StoreError, match="closed"):
        w.log(line(run_id, attempt, "job/step-0", "too late"))
    assert [x.seq for x in store.logs(run_id)] == list(range(1, 1202))


def test_writer_refreshes_heartbeat(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "HEARTBEAT_INTERVAL", 0.05)
    run_id = new_run(store)
    lease = start(store, run_id)
    before = _heartbeat(store, run_id)
    w = writer(store, lease)
    time.sleep(0.4)
    w.close()
    after = _heartbeat(store, run_id)
    assert after[0] > before[0] and after[1] > before[1]  # heartbeat_at, lease_expires_at


def test_store_close_closes_open_writers(url: str) -> None:
    from worldtree.store import open_store

    store = open_store(url)
    run_id = new_run(store)
    lease = start(store, run_id)
    writer(store, lease).log(line(run_id, lease.attempt, "a", "kept"))
    store.close()
    reopened = open_store(url)
    assert [x.line for x in reopened.logs(run_id)] == ["kept"]
    reopened.close()


def _heartbeat(store: RunStore, run_id: str) -> Any:
    from sqlalchemy import select

    from worldtree.store.tables import attempts

    with store._engine.connect() as conn:  # type: ignore[attr-defined]
        return conn.execute(select(attempts.c.heartbeat_at, attempts.c.lease_expires_at)
                            .where(attempts.c.run_id == run_id)).one()


def test_lines_any_database_would_refuse_are_cleaned(store: RunStore) -> None:
    run_id = new_run(store)
    lease = start(store, run_id)
    attempt, w = lease.attempt, writer(store, lease)
    for text in ["nul\x00byte", "lone \udcff surrogate", "ünïcödé ✓"]:
        w.log(line(run_id, attempt, "a", text))
    w.close()
    assert [x.line for x in store.logs(run_id)] == ["nul\ufffdbyte", "lone ? surrogate", "ünïcödé ✓"]
