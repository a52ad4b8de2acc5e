"""The server's event log, as the application sees it: what happened to runs and their nodes.

Written by the operations themselves — :func:`worldtree.app.service.submit` and ``retry``
(``run.queued``), the executor (``run.started``, ``node.state`` after the store committed the
node's change, ``run.finished``) — and read by the SSE and WebSocket followers
(:mod:`worldtree.server.routes_events`). The agents issue adds ``agent.*`` kinds through
:func:`emit`. Recording an event is best effort: a store that refuses it must not fail the run
whose state it already holds (the state is the truth; the event log is a feed of it). What a
``kill -9`` took between a node's commit and its event is not lost for good: before
``run.finished`` the executor that ends the run (the one that took it over, after a kill)
calls :func:`reconcile`, which emits every committed node state the log lacks.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from worldtree.errors import StoreError
from worldtree.model.graph import ExecutionGraph
from worldtree.model.records import LogLine, NodeEvent
from worldtree.store.api import RunStore
from worldtree.store.events import Event, event_log

log = logging.getLogger("worldtree.events")

#: Kinds of run events; node events are ``node.state``.
RUN_QUEUED, RUN_STARTED, RUN_FINISHED, NODE_STATE = "run.queued", "run.started", "run.finished", "node.state"


def emit(store: RunStore, kind: str, run_id: str | None, **data: Any) -> None:
    """Record one event (best effort: a failure is logged, never raised)."""
    emit_many(store, [(kind, run_id, data)])


def emit_many(store: RunStore, items: list[tuple[str, str | None, dict[str, Any]]]) -> None:
    try:
        event_log(store).append(items)
    except (StoreError, AttributeError) as exc:  # AttributeError: a store without SQL (tests' fakes)
        log.warning("could not record %d event(s): %s", len(items), exc)


#: how many of a run's events :func:`reconcile` reads at most (a bound, not an expected size)
RECONCILE_MAX_EVENTS = 200_000


def reconcile(store: RunStore, run_id: str, attempt: int) -> int:
    """Emit ``node.state`` for the attempt's committed node states the event log does not have.

    Best effort like :func:`emit`; returns how many events it added. Compared on (node, state, try):
    the last state each node reached in this attempt must be in the log once the run ends.
    """
    try:
        feed = event_log(store)
        seen: set[tuple[str, str, int]] = set()
        after, read = 0, 0
        while read < RECONCILE_MAX_EVENTS:
            batch = feed.after(after, run_id=run_id, limit=1000)
            if not batch:
                break
            for event in batch:
                data = event.data
                if event.kind == NODE_STATE and data.get("attempt") == attempt:
                    seen.add((str(data.get("node")), str(data.get("state")), int(data.get("try") or 1)))
            after, read = batch[-1].id, read + len(batch)
        missing: list[tuple[str, str | None, dict[str, Any]]] = [
            (NODE_STATE, run_id, node_data(NodeEvent(
                run_id, attempt, record.node, record.state, record.finished_at or record.started_at
                or datetime.now(UTC), record.started_at, record.finished_at, record.exit_code, record.error,
                record.reason, record.try_number)))
            for record in store.node_records(run_id, attempt)
            if record.state != "pending" and (record.node, record.state, record.try_number) not in seen]
    except (StoreError, AttributeError) as exc:
        log.warning("could not reconcile the events of run %s: %s", run_id, exc)
        return 0
    emit_many(store, missing)
    return len(missing)


def node_data(event: NodeEvent) -> dict[str, Any]:
    """A node event's payload (the ``node.state`` event and the ``--json`` line agree)."""
    body = event.as_json()
    for key in ("event", "run_id"):
        body.pop(key, None)
    return body


class NodeFeed:
    """An engine listener recording every committed node state change as a ``node.state`` event.

    It is the executor's console: :func:`worldtree.app.runs._show_committed` calls it after the
    store committed the batch, so the event never announces a state the store does not have."""

    def __init__(self, store: RunStore, executor: str | None = None) -> None:
        self.store = store
        self.executor = executor

    def on_event(self, event: NodeEvent) -> None:
        emit(self.store, NODE_STATE, event.run_id, **node_data(event))
        # the server's log line for it (the writer's thread: the fields are given, not bound)
        log.info("node %s %s", event.node, event.state, extra={
            "run_id": event.run_id, "attempt": event.attempt, "node": event.node, "state": event.state,
            "executor": self.executor})

    def on_log(self, line: LogLine) -> None:
        pass


def node_feed(store: RunStore, executor: str | None = None) -> Any:
    """A console factory (``ListenerFactory``) for executors: followers read the store and the event log."""

    def factory(run_id: str, attempt: int, graph: ExecutionGraph, masker: Any) -> NodeFeed:
        return NodeFeed(store, executor)

    return factory


def after(store: RunStore, after_id: int, *, run_id: str | None = None, limit: int = 1000) -> list[Event]:
    """Events with ids above ``after_id`` (of one run, when given), oldest first."""
    return event_log(store).after(after_id, run_id=run_id, limit=limit)


def forget_run(store: RunStore, run_id: str) -> None:
    """Delete a deleted run's events (best effort, like recording them)."""
    try:
        event_log(store).forget_run(run_id)
    except (StoreError, AttributeError) as exc:
        log.warning("could not delete the events of run %s: %s", run_id, exc)


def last_id(store: RunStore) -> int:
    return event_log(store).last_id()
