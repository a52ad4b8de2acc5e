"""Small builders shared by the store tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from worldtree.store import AttemptLease, LogLine, NodeEvent, RunStore, RunWriter


def new_run(store: RunStore, name: str = "demo") -> str:
    return store.create_run(name=name, source="pipeline.yaml", workdir="/tmp/w", graph_json='{"nodes": []}',
                            options={"concurrency": 4})


def event(run_id: str, attempt: int, node: str, state: str, **fields: object) -> NodeEvent:
    return NodeEvent(run_id=run_id, attempt=attempt, node=node, state=state, ts=datetime.now(UTC),
                     **fields)  # type: ignore[arg-type]


def line(run_id: str, attempt: int, node: str, text: str, stream: str = "stdout") -> LogLine:
    return LogLine(run_id=run_id, attempt=attempt, node=node, stream=stream, line=text, ts=datetime.now(UTC))


def start(store: RunStore, run_id: str, nodes: list[str] | None = None,
          expect_attempt: int | None = None) -> AttemptLease:
    return store.start_attempt(run_id, node_ids=nodes or [], expect_attempt=expect_attempt)


def writer(store: RunStore, lease: AttemptLease, **callbacks: Any) -> RunWriter:
    return store.writer(lease.run_id, lease.attempt, token=lease.token, **callbacks)
