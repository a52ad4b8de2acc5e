"""The live view on a TTY: the DAG's stages, jobs and steps with state, duration and progress."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text
from rich.tree import Tree

from worldtree.cli.console import node_paths
from worldtree.cli.terminal import sanitize
from worldtree.engine.masking import Masker
from worldtree.model.graph import ExecutionGraph
from worldtree.model.records import LogLine, NodeEvent

_STYLE = {"pending": ("·", "dim"), "running": ("▶", "bold yellow"), "succeeded": ("✔", "green"),
          "failed": ("✘", "bold red"), "cancelled": ("■", "magenta"), "skipped": ("○", "dim cyan"),
          "timed_out": ("⌛", "red"), "reused": ("↺", "green")}
_TERMINAL = {"succeeded", "failed", "cancelled", "skipped", "timed_out", "reused"}


class LiveConsole:
    """Rich live tree; output lines scroll above it, prefixed with the node path."""

    def __init__(self, graph: ExecutionGraph, console: Console | None = None, max_rows: int = 60,
                 masker: Masker | None = None) -> None:
        self.graph = graph
        self.console = console or Console()
        self.states: dict[str, NodeEvent] = {}
        self.paths = node_paths(graph, masker)
        self.max_rows = max_rows
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console)
        self.task = self.progress.add_task(graph.name, total=len(graph.nodes))
        self.done = 0
        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False,
                         get_renderable=self._render)

    def __enter__(self) -> LiveConsole:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def on_event(self, event: NodeEvent) -> None:
        before = self.states.get(event.node)
        if event.state in _TERMINAL and (before is None or before.state not in _TERMINAL):
            self.done += 1
            self.progress.update(self.task, completed=self.done)
        self.states[event.node] = event

    def on_log(self, line: LogLine) -> None:
        text = Text(f"[{self.paths.get(line.node, line.node)}] ", style="dim")
        body = Text.from_ansi(sanitize(line.line))  # the step's colours, nothing else of its escapes
        if line.stream == "stderr":
            body.stylize("red")
        text.append_text(body)
        self.console.print(text, highlight=False, markup=False)

    def _render(self) -> Group:
        root = Tree(Text(self.graph.name, style="bold"))
        branches: dict[tuple[str, ...], Tree] = {}
        shown = 0
        for node in self.graph.nodes:
            ev = self.states.get(node.id)
            state = ev.state if ev else "pending"
            if len(self.graph.nodes) > self.max_rows and state in ("pending", "succeeded", "reused", "skipped"):
                continue  # big graphs: show what needs attention; the bar shows the rest
            if shown >= self.max_rows:
                break
            shown += 1
            parts = self.paths[node.id].split("/")
            parent = root
            for depth in range(1, len(parts)):
                key = tuple(parts[:depth])
                if key not in branches:
                    branches[key] = parent.add(Text(parts[depth - 1], style="bold blue"))
                parent = branches[key]
            icon, style = _STYLE.get(state, ("?", ""))
            label = Text(f"{icon} {parts[-1]} ", style=style)
            label.append(state, style=style)
            label.append(_duration(ev), style="dim")
            if ev is not None and ev.error and state in _TERMINAL:
                label.append(f"  {sanitize(ev.error)}", style="red")
            parent.add(label)
        return Group(root, self.progress)


def _duration(ev: NodeEvent | None) -> str:
    if ev is None or ev.started_at is None:
        return ""
    end = ev.finished_at or datetime.now(UTC)
    seconds = (end - ev.started_at).total_seconds()
    return f"  {seconds:.1f}s"


