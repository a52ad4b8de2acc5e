"""Compare-and-set claims: attempts, retries racing, finishing with a token, node transitions and leases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from store_helpers import event, new_run, start, writer

from worldtree.errors import ConflictError
from worldtree.store import RunStore, open_store
from worldtree.store.tables import attempts


def _expire(store: RunStore, run_id: str) -> None:
    """Make the run's attempts look like another host's whose lease ran out."""
    with store._engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(update(attempts).where(attempts.c.run_id == run_id).values(
            hostname="elsewhere", lease_expires_at=datetime.now(UTC) - timedelta(seconds=1)))


def test_a_live_attempt_cannot_be_claimed_again(store: RunStore) -> None:
    run_id = new_run(store)
    first = start(store, run_id, ["a"], expect_attempt=0)
    with pytest.raises(ConflictError, match=rf"run {run_id} is still running \(pid \d+ on .*\); wait for it or "
                                            rf"`worldtree cancel {run_id}`"):
        start(store, run_id, ["a"])
    with pytest.raises(ConflictError, match=r"retried at the same time by another process \(attempt 1\)"):
        start(store, run_id, ["a"], expect_attempt=0)
    _expire(store, run_id)
    second = start(store, run_id, ["a"], expect_attempt=1)
    assert (second.attempt, second.token) == (2, 2) and second.token > first.token
    # the first attempt was fenced: it can neither finish nor open a writer
    with pytest.raises(ConflictError, match="interrupted"):
        store.finish_attempt(run_id, 1, "succeeded", token=first.token)
    with pytest.raises(ConflictError):
        writer(store, first)
    store.finish_attempt(run_id, 2, "succeeded", token=second.token)
    with pytest.raises(ConflictError):  # finishing twice is a conflict, not a silent overwrite
        store.finish_attempt(run_id, 2, "failed", token=second.token)
    assert store.get_run(run_id).state == "succeeded"  # type: ignore[union-attr]


def test_pending_rows_for_every_node(store: RunStore) -> None:
    run_id = new_run(store)
    names = [f"stage/job-{i}/step" for i in range(5000)]
    lease = start(store, run_id, names)
    records = store.node_records(run_id, lease.attempt)
    assert len(records) == 5000 and {r.state for r in records} == {"pending"}


@pytest.mark.parametrize("rounds", [25])
def test_two_retries_at_once_exactly_one_wins(url: str, rounds: int) -> None:
    stores = [open_store(url), open_store(url)]
    try:
        for _ in range(rounds):
            run_id = new_run(stores[0])
            first = start(stores[0], run_id, ["a"])
            stores[0].finish_attempt(run_id, first.attempt, "failed", token=first.token)
            barrier = threading.Barrier(2)
            won: list[int] = []
            lost: list[str] = []

            def retry(store: RunStore, run_id: str = run_id, barrier: threading.Barrier = barrier,
                      won: list[int] = won, lost: list[str] = lost) -> None:
                barrier.wait()
                try:
                    won.append(start(store, run_id, ["a", "b"], expect_attempt=1).attempt)
                except ConflictError as exc:
                    lost.append(str(exc))

            threads = [threading.Thread(target=retry, args=(s,)) for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert won == [2] and len(lost) == 1, (won, lost)
            assert "retried at the same time" in lost[0] or "still running" in lost[0]
            assert len(stores[0].node_records(run_id, 2)) == 2
    finally:
        for store in stores:
            store.close()


def test_node_transitions_are_compare_and_set(store: RunStore) -> None:
    run_id = new_run(store)
    lease = start(store, run_id, ["done", "reused", "late", "annotated"])
    faults: list[BaseException] = []
    w = writer(store, lease, on_fault=faults.append)
    a = lease.attempt
    w.node_event(event(run_id, a, "done", "running"))
    w.node_event(event(run_id, a, "done", "succeeded", exit_code=0))
    w.node_event(event(run_id, a, "annotated", "reused"))
    w.node_event(event(run_id, a, "annotated", "reused", reason="rolled_back"))
    w.flush()
    assert faults == []
    w.node_event(event(run_id, a, "done", "failed", exit_code=1))  # terminal never changes
    w.flush()
    assert len(faults) == 1 and isinstance(faults[0], ConflictError)
    assert "done → failed" in str(faults[0])
    w.close()
    states = {n.node: (n.state, n.reason) for n in store.node_records(run_id)}
    assert states == {"done": ("succeeded", None), "reused": ("pending", None), "late": ("pending", None),
                      "annotated": ("reused", "rolled_back")}


def test_a_refused_node_change_is_not_shown(store: RunStore) -> None:
    run_id = new_run(store)
    lease = start(store, run_id, ["x", "y"])
    shown: list[tuple[str, str]] = []
    faults: list[BaseException] = []
    w = writer(store, lease, on_fault=faults.append,
               on_commit=lambda events, lines: shown.extend((e.node, e.state) for e in events))
    w.node_event(event(run_id, lease.attempt, "x", "running"))
    w.node_event(event(run_id, lease.attempt, "x", "reused"))  # reused only from pending: first event's rule
    w.node_event(event(run_id, lease.attempt, "y", "reused"))
    w.node_event(event(run_id, lease.attempt, "ghost", "running"))  # not a node of this attempt
    w.close()
    # x collapsed: the first event's rule (from pending), the last event's values; the ghost is refused
    assert shown == [("x", "running"), ("x", "reused"), ("y", "reused")]
    assert len(faults) == 1 and "ghost → running" in str(faults[0]) and "x →" not in str(faults[0])
    assert {n.node: n.state for n in store.node_records(run_id)} == {"x": "reused", "y": "reused"}
    again: list[BaseException] = []
    w2 = writer(store, lease, on_fault=again.append)
    w2.node_event(event(run_id, lease.attempt, "y", "reused"))
    w2.close()
    assert len(again) == 1 and "y → reused" in str(again[0])


def test_node_leases(store: RunStore) -> None:
    run_id = new_run(store)
    lease = start(store, run_id, ["a", "b"])
    token = store.claim_node(run_id, lease.attempt, "a", "agent-1", 30)
    assert token == 1
    assert store.claim_node(run_id, lease.attempt, "a", "agent-2", 30) is None
    assert store.claim_node(run_id, lease.attempt, "nope", "agent-2", 30) is None
    assert store.renew_node_lease(run_id, lease.attempt, "a", token, 60)
    assert not store.renew_node_lease(run_id, lease.attempt, "a", token + 1, 60)
    now = datetime.now(UTC)
    assert store.expired_node_leases(now) == []
    assert store.expired_node_leases(now + timedelta(seconds=61)) == [(run_id, lease.attempt, "a", token)]
    record = {n.node: n for n in store.node_records(run_id)}["a"]
    assert record.state == "running" and record.started_at is not None
