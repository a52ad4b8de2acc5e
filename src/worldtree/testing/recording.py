"""Run a pipeline in-process and record what the engine reported (engine tests use this)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

from worldtree.backends.base import RunContext
from worldtree.compile.compiler import compile_pipeline
from worldtree.compile.loader import load_pipeline_text
from worldtree.engine.local import local_driver
from worldtree.model.records import LogLine, NodeEvent
from worldtree.model.states import RunState
from worldtree.testing.dummy import DummyBackend


@dataclass
class RecordingListener:
    events: list[NodeEvent] = field(default_factory=list)
    lines: list[LogLine] = field(default_factory=list)

    def on_event(self, event: NodeEvent) -> None:
        self.events.append(event)

    def on_log(self, line: LogLine) -> None:
        self.lines.append(line)

    def final(self) -> dict[str, str]:
        """Node id -> last state (rollback events keep the node's state)."""
        return {e.node: e.state for e in self.events}

    def last(self, node: str) -> NodeEvent:
        return [e for e in self.events if e.node == node][-1]

    def output(self, node: str | None = None) -> list[str]:
        return [line.line for line in self.lines if node is None or line.node == node]


def run_pipeline_text(text: str, *, concurrency: int = 4, workdir: str | None = None,
                      secrets: dict[str, str] | None = None, env: dict[str, str] | None = None,
                      reuse: dict[str, int] | None = None, grace_seconds: float = 2.0,
                      dummy: DummyBackend | None = None) -> tuple[RunState, RecordingListener]:
    """Compile ``text`` and run it in this process; with ``dummy``, every node runs on that backend."""
    from worldtree.app.runs import run_async

    graph = compile_pipeline(load_pipeline_text(text).spec, env_overrides=env)
    listener = RecordingListener()
    ctx = RunContext(run_id="test-run", attempt=1, workdir=workdir or tempfile.mkdtemp(prefix="wt-"),
                     graph=graph, grace_seconds=grace_seconds, secret_values=list((secrets or {}).values()))
    driver = local_driver(ctx, listener, concurrency=concurrency, secrets=secrets, reuse=reuse,
                          backend_factory=(lambda kind, ctx: dummy) if dummy is not None else None)
    return run_async(driver), listener
