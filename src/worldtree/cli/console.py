"""Console listeners for ``worldtree run``: JSON lines, plain lines, or (on a TTY) a live view."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from worldtree.model.graph import ExecutionGraph
from worldtree.store.records import LogLine, NodeEvent


class JsonConsole:
    """One JSON object per line; the first carries ``run_id`` (written by the CLI)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def on_event(self, event: NodeEvent) -> None:
        self.out.write(json.dumps(event.as_json()) + "\n")
        self.out.flush()

    def on_log(self, line: LogLine) -> None:
        self.out.write(json.dumps(line.as_json()) + "\n")


class PlainConsole:
    """Lines prefixed with the node's path: what CI logs and pipes want."""

    def __init__(self, graph: ExecutionGraph, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.paths = {n.id: n.path for n in graph.nodes}

    def on_event(self, event: NodeEvent) -> None:
        path = self.paths.get(event.node, event.node)
        text = f"[{path}] {event.state}"
        if event.state != "running" and event.started_at and event.finished_at:
            text += f" in {(event.finished_at - event.started_at).total_seconds():.2f}s"
        if event.exit_code not in (None, 0):
            text += f" (exit code {event.exit_code})"
        if event.reason and event.reason not in ("never started",):
            text += f" [{event.reason}]"
        if event.error and event.state != "running":
            text += f": {event.error}"
        self.out.write(text + "\n")

    def on_log(self, line: LogLine) -> None:
        self.out.write(f"[{self.paths.get(line.node, line.node)}] {line.line}\n")
