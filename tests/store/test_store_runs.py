from __future__ import annotations

import json
import time
from contextlib import closing
from datetime import UTC

import pytest
from store_helpers import event, new_run, start, writer

from worldtree.errors import UsageError
from worldtree.model.states import NodeState, RunState
from worldtree.store import RunStore
from worldtree.store.ids import new_run_id


def test_create_start_finish(store: RunStore) -> None:
    run_id = new_run(store)
    created = store.get_run(run_id)
    assert created is not None
    assert (created.state, created.attempt, created.name) == ("pending", 0, "demo")
    assert created.source == "pipeline.yaml"
    assert created.options == {"concurrency": 4} and json.loads(created.graph_json) == {"nodes": []}
    assert created.created_at.tzinfo is UTC and created.started_at is None

    lease = start(store, run_id)
    running = store.get_run(run_id)
    assert (lease.attempt, lease.token) == (1, 1) and running is not None
    assert (running.state, running.attempt, running.graph_version) == (RunState.RUNNING, 1, 1)
    assert running.started_at is not None and running.started_at.tzinfo is UTC

    store.finish_attempt(run_id, lease.attempt, RunState.FAILED, token=lease.token)
    finished = store.get_run(run_id)
    assert finished is not None and finished.state == "failed"
    assert finished.finished_at is not None and finished.finished_at >= finished.started_at  # type: ignore[operator]


def test_finish_rejects_unknown_attempt_and_state(store: RunStore) -> None:
    run_id = new_run(store)
    lease = start(store, run_id)
    with pytest.raises(UsageError):
        store.finish_attempt(run_id, 7, "succeeded", token=lease.token)
    with pytest.raises(ValueError):
        store.finish_attempt(run_id, 1, "exploded", token=lease.token)
    with pytest.raises(UsageError):
        start(store, "no-such-run")


def test_node_states_advance_per_attempt(store: RunStore) -> None:
    run_id = new_run(store)
    lease = start(store, run_id, ["build/compile", "test/unit", "never/ran"])
    attempt, w = lease.attempt, writer(store, lease)
    w.node_event(event(run_id, attempt, "build/compile", "running"))
    w.node_event(event(run_id, attempt, "test/unit", "skipped", reason="condition"))
    w.flush()  # the next events update rows that already moved
    w.node_event(event(run_id, attempt, "build/compile", "running", try_number=2, reason="retry 1/2"))
    w.node_event(event(run_id, attempt, "build/compile", "succeeded", exit_code=0, try_number=2))
    w.close()

    nodes = {n.node: n for n in store.node_records(run_id)}
    assert set(nodes) == {"build/compile", "test/unit", "never/ran"}
    assert nodes["never/ran"].state == "pending"
    compile_ = nodes["build/compile"]
    assert (compile_.state, compile_.exit_code, compile_.error) == ("succeeded", 0, None)
    assert compile_.try_number == 2
    assert compile_.started_at is not None and compile_.finished_at is not None
    assert compile_.started_at.tzinfo is UTC and compile_.started_at <= compile_.finished_at
    assert (nodes["test/unit"].state, nodes["test/unit"].reason) == (NodeState.SKIPPED, "condition")

    # A second attempt has rows of its own; get_run shows the latest.
    store.finish_attempt(run_id, attempt, "failed", token=lease.token)
    second = start(store, run_id, ["build/compile"])
    with closing(writer(store, second)) as w2:
        w2.node_event(event(run_id, second.attempt, "build/compile", "reused"))
    record = store.get_run(run_id)
    assert record is not None
    assert [(n.node, n.state, n.attempt) for n in record.nodes] == [("build/compile", "reused", 2)]
    assert {n.node for n in store.node_records(run_id, attempt=1)} == {"build/compile", "test/unit", "never/ran"}
    assert store.node_records("no-such-run") == []


def test_get_run_by_unique_prefix(store: RunStore) -> None:
    first, second = new_run(store), new_run(store)
    assert first != second
    common = _common_prefix(first, second)
    assert store.get_run(first[: len(common) + 1]).run_id == first  # type: ignore[union-attr]
    assert store.get_run(first).run_id == first  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="ambiguous"):
        store.get_run(common)
    assert store.get_run("19990101-") is None
    assert store.get_run("") is None
    assert store.get_run("2%") is None  # LIKE wildcards are escaped


def test_list_runs_newest_first(store: RunStore) -> None:
    ids = [new_run(store, name=f"r{i}") for i in range(5)]
    assert ids == sorted(ids)  # ids sort by creation time
    listed = store.list_runs()
    assert [r.run_id for r in listed] == ids[::-1]
    assert all(r.graph_json == "" and r.nodes == [] for r in listed)
    assert [r.run_id for r in store.list_runs(limit=2)] == ids[::-1][:2]


def test_page_runs_searches_ids_and_names_case_insensitively(store: RunStore) -> None:
    deploy = new_run(store, name="Deploy-Web")
    build = new_run(store, name="build_100%")
    other = new_run(store, name="buildx1000")

    def found(q: str) -> list[str]:
        records, total = store.page_runs(q=q)
        assert total == len(records)
        return [r.run_id for r in records]

    assert found("deploy") == [deploy]
    assert found("_100%") == [build]  # `_` and `%` match themselves, not any character
    assert found("BUILD") == [other, build]
    assert found(deploy[-6:]) == [deploy]  # part of an id
    assert found("nothing-like-it") == []


def test_run_ids_are_sortable_and_unique() -> None:
    ids = [new_run_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert len(ids[0]) == len("20261122-174512-0a3f9")
    later = new_run_id()
    time.sleep(0.002)
    assert new_run_id() > later


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]
