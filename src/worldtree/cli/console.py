"""Console listeners for ``worldtree run``: JSON lines, plain lines, or (on a TTY) a live view."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from worldtree.cli.terminal import sanitize
from worldtree.engine.masking import Masker
from worldtree.model.graph import ExecutionGraph
from worldtree.model.records import LogLine, NodeEvent


class _Writer:
    """Console output that stops, instead of failing the run, once its reader is gone
    (``worldtree run p.yaml | head``) or its disk is full: the store still records everything."""

    out: TextIO | None

    def write(self, text: str, flush: bool = False) -> None:
        if self.out is None:
            return
        try:
            self.out.write(text)
            if flush:
                self.out.flush()
        except OSError:
            self.out = None


class JsonConsole(_Writer):
    """One JSON object per line; the first carries ``run_id`` (written by the CLI).

    Lines are masked whole: node ids and errors can hold a value a step name or a file carried.
    """

    def __init__(self, out: TextIO | None = None, masker: Masker | None = None) -> None:
        self.out = out or sys.stdout
        self.masker = masker or Masker()

    def on_event(self, event: NodeEvent) -> None:
        self.write(self.masker.mask(json.dumps(event.as_json())) + "\n", flush=True)

    def on_log(self, line: LogLine) -> None:
        self.write(self.masker.mask(json.dumps(line.as_json())) + "\n")


class PlainConsole(_Writer):
    """Lines prefixed with the node's path: what CI logs and pipes want. Output keeps its colours
    and loses every other terminal control sequence (:mod:`worldtree.cli.terminal`)."""

    def __init__(self, graph: ExecutionGraph, out: TextIO | None = None, masker: Masker | None = None) -> None:
        self.out = out or sys.stdout
        self.paths = node_paths(graph, masker)

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
            text += f": {sanitize(event.error)}"
        self.write(text + "\n")

    def on_log(self, line: LogLine) -> None:
        self.write(f"[{self.paths.get(line.node, line.node)}] {sanitize(line.line)}\n")


def node_paths(graph: ExecutionGraph, masker: Masker | None) -> dict[str, str]:
    """Node id -> the path shown for it; a step name can hold a secret's value (``deploy $TOKEN``)."""
    mask = masker.mask if masker else str
    return {n.id: mask(n.path) for n in graph.nodes}
