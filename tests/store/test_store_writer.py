"""The writer's promises: database-ordered log seqs, write-then-show, cancel, fencing, faults."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from store_helpers import line, new_run, start, writer

from worldtree.errors import ConflictError, StoreError
from worldtree.store import LogLine, NodeEvent, RunStore, batching, open_store
from worldtree.store.tables import attempts


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "HEARTBEAT_INTERVAL", 0.05)
    monkeypatch.setattr(batching, "FAULT_AFTER", 1.0)


def _wait_for(condition: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_two_writers_of_one_run_never_share_or_skip_a_seq(url: str, store: RunStore) -> None:
    run_id = new_run(store)
    lease = start(store, run_id)
    per_writer = 3000
    committed: dict[str, list[int]] = {"w1": [], "w2": []}
    other = open_store(url)  # a second process's store, as after a kill -9 and a retry
    writers = {"w1": writer(store, lease, on_commit=lambda ev, ls: committed["w1"].extend(x.seq for x in ls)),
               "w2": writer(other, lease, on_commit=lambda ev, ls: committed["w2"].extend(x.seq for x in ls))}
    seen: list[int] = []
    done = threading.Event()

    def follow() -> None:  # what `worldtree logs --follow` does
        reader = open_store(url)
        try:
            while True:
                finished = done.is_set()
                new = reader.logs(run_id, after_seq=seen[-1] if seen else 0)
                assert [x.seq for x in new] == list(range(len(seen) + 1, len(seen) + 1 + len(new))), "a gap"
                seen.extend(x.seq for x in new)
                if finished:
                    return
                time.sleep(0.01)
        finally:
            reader.close()

    def produce(name: str) -> None:
        for i in range(per_writer):
            writers[name].log(line(run_id, lease.attempt, name, f"{name} {i}"))
            if i % 100 == 0:
                time.sleep(0.005)

    follower = threading.Thread(target=follow)
    follower.start()
    producers = [threading.Thread(target=produce, args=(n,)) for n in writers]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    for w in writers.values():
        w.close()
    other.close()
    done.set()
    follower.join()

    assert seen == list(range(1, 2 * per_writer + 1))
    assert sorted(committed["w1"] + committed["w2"]) == seen
    assert all(c == sorted(c) for c in committed.values())  # each writer shows its lines in seq order
    stored = store.logs(run_id)
    for name in writers:  # every writer's own lines keep their order
        mine = [x.line for x in stored if x.node == name]
        assert mine == [f"{name} {i}" for i in range(per_writer)]


def test_on_commit_sees_only_what_is_stored(store: RunStore) -> None:
    run_id = new_run(store)
    lease = start(store, run_id, ["a"])
    checks: list[bool] = []

    def on_commit(events: list[NodeEvent], lines: list[LogLine]) -> None:
        stored = {x.seq for x in store.logs(run_id)}
        checks.append(all(x.seq in stored for x in lines) and all(x.seq > 0 for x in lines))

    w = writer(store, lease, on_commit=on_commit)
    for i in range(1200):
        w.log(line(run_id, lease.attempt, "a", f"l{i}"))
    w.close()
    assert checks and all(checks)


def test_a_cancel_request_reaches_on_cancel_once(store: RunStore, fast: None) -> None:
    run_id = new_run(store)
    assert store.request_cancel(run_id[:-1], "before start")  # a pending run, by id prefix
    lease = start(store, run_id, ["a"])
    heard: list[str] = []
    w = writer(store, lease, on_cancel=heard.append)
    _wait_for(lambda: heard)
    assert store.request_cancel(run_id, "again")  # idempotent; the first reason stays
    time.sleep(0.3)
    w.close()
    assert heard == ["before start"]
    assert store.get_run(run_id).cancel_reason == "before start"  # type: ignore[union-attr]
    store.finish_attempt(run_id, lease.attempt, "cancelled", token=lease.token)
    assert not store.request_cancel(run_id, "too late")

    # a retry starts without the old attempt's request, and hears a new one
    retry = start(store, run_id, ["a"], expect_attempt=1)
    heard.clear()
    w = writer(store, retry, on_cancel=heard.append)
    time.sleep(0.2)
    assert heard == [] and store.get_run(run_id).cancel_reason is None  # type: ignore[union-attr]
    assert store.request_cancel(run_id, "SIGTERM")
    _wait_for(lambda: heard)
    w.close()
    assert heard == ["SIGTERM"]


def test_a_fenced_writer_hears_it_lost_the_lease(store: RunStore, fast: None) -> None:
    run_id = new_run(store)
    lease = start(store, run_id, ["a"])
    faults: list[BaseException] = []
    w = writer(store, lease, on_fault=faults.append)
    with store._engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(attempts).where(attempts.c.run_id == run_id).values(
            hostname="elsewhere", lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    start(store, run_id, ["a"], expect_attempt=1)  # another process takes the run over
    _wait_for(lambda: faults)
    w.close()
    assert len(faults) == 1 and isinstance(faults[0], ConflictError) and "lost the lease" in str(faults[0])


def test_a_failing_store_reaches_on_fault_within_fault_after(store: RunStore, fast: None) -> None:
    run_id = new_run(store)
    lease = start(store, run_id, ["a"])
    faults: list[tuple[float, BaseException]] = []
    w = writer(store, lease, on_fault=lambda exc: faults.append((time.monotonic(), exc)))
    with store._engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("DROP TABLE logs")
    began = time.monotonic()
    w.log(line(run_id, lease.attempt, "a", "nowhere to go"))
    _wait_for(lambda: faults, seconds=batching.FAULT_AFTER + 3)
    assert len(faults) == 1, "on_fault was not called"
    at, fault = faults[0]
    assert isinstance(fault, StoreError) and "logs" in str(fault)
    assert batching.FAULT_AFTER <= at - began <= batching.FAULT_AFTER + 1.5
    with store._engine.connect() as conn:  # type: ignore[attr-defined]
        beat = conn.execute(select(attempts.c.lease_expires_at).where(attempts.c.run_id == run_id)).scalar()
    assert beat > datetime.now(UTC) + timedelta(seconds=20)  # the heartbeat kept the lease meanwhile
    with pytest.raises(StoreError, match="logs"):
        w.close()  # the last batch cannot be written: said loudly


def test_callback_exceptions_go_to_on_fault(store: RunStore, fast: None) -> None:
    run_id = new_run(store)
    lease = start(store, run_id, ["a"])
    faults: list[BaseException] = []

    def boom(*_: object) -> None:
        raise RuntimeError("console broke")

    w = writer(store, lease, on_commit=boom, on_fault=faults.append)
    w.log(line(run_id, lease.attempt, "a", "one"))
    w.flush()
    w.log(line(run_id, lease.attempt, "a", "two"))
    w.close()  # the thread survived: the second line is stored too
    assert [str(f) for f in faults] == ["console broke"]
    assert [x.line for x in store.logs(run_id)] == ["one", "two"]


def test_too_much_waiting_output_is_refused(store: RunStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "MAX_BUFFERED", 50)
    run_id = new_run(store)
    lease = start(store, run_id, ["a"])
    faults: list[BaseException] = []
    w = writer(store, lease, on_fault=faults.append)
    with store._engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("DROP TABLE logs")
    with pytest.raises(StoreError, match="records wait"):
        for i in range(10_000):
            w.log(line(run_id, lease.attempt, "a", f"l{i}"))
    _wait_for(lambda: faults)
    assert faults and isinstance(faults[0], StoreError)
    with pytest.raises(StoreError):
        w.close()
