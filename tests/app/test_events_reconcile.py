"""A node state whose event a kill -9 took is emitted before the run's end (app.events.reconcile)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from worldtree.app import events
from worldtree.model.records import NodeEvent
from worldtree.store import open_store
from worldtree.store.api import RunStore
from worldtree.store.events import event_log
from worldtree.testing.stores import pg_unavailable_reason, store_url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "postgres" and (why := pg_unavailable_reason()):
        pytest.skip(why)
    with store_url(request.param, tmp_path) as url:
        opened = open_store(url)
        try:
            yield opened
        finally:
            opened.close()


def _node_events(store: RunStore, run_id: str) -> list[tuple[str, str]]:
    return [(e.data["node"], e.data["state"]) for e in event_log(store).after(0, run_id=run_id)
            if e.kind == events.NODE_STATE]


def test_reconcile_emits_only_what_the_log_lacks(store: RunStore) -> None:
    run_id = store.create_run(name="n", source=None, workdir="/", graph_json="{}", options={})
    lease = store.start_attempt(run_id, node_ids=["a", "b", "c"])
    now = datetime.now(UTC)
    writer = store.writer(run_id, lease.attempt, token=lease.token)
    for node in ("a", "b"):
        writer.node_event(NodeEvent(run_id, lease.attempt, node, "running", now, now))
        writer.node_event(NodeEvent(run_id, lease.attempt, node, "succeeded", now, now, now, 0))
    writer.close()
    # the feed recorded a's end; b's event was lost (the process died between commit and event)
    events.emit(store, events.NODE_STATE, run_id, **events.node_data(
        NodeEvent(run_id, lease.attempt, "a", "succeeded", now, now, now, 0)))

    assert events.reconcile(store, run_id, lease.attempt) == 1
    assert _node_events(store, run_id) == [("a", "succeeded"), ("b", "succeeded")]
    assert events.reconcile(store, run_id, lease.attempt) == 0  # idempotent; c never left pending
