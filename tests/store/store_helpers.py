"""Small builders shared by the store tests."""

from __future__ import annotations

from datetime import UTC, datetime

from worldtree.store import LogLine, NodeEvent, RunStore


def new_run(store: RunStore, name: str = "demo") -> str:
    return store.create_run(name=name, source="pipeline.yaml", workdir="/tmp/w", graph_json='{"nodes": []}',
                            options={"concurrency": 4})


def event(run_id: str, attempt: int, node: str, state: str, **fields: object) -> NodeEvent:
    return NodeEvent(run_id=run_id, attempt=attempt, node=node, state=state, ts=datetime.now(UTC),
                     **fields)  # type: ignore[arg-type]


def line(run_id: str, attempt: int, node: str, text: str, stream: str = "stdout") -> LogLine:
    return LogLine(run_id=run_id, attempt=attempt, node=node, stream=stream, line=text, ts=datetime.now(UTC))
