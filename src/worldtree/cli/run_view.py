"""How ``runs``, ``runs show`` and ``logs`` present stored records: pure functions over
:mod:`worldtree.model.records`, so what a user reads is tested without a store.

A run whose process died is ``interrupted``; its nodes that were ``running`` (or ``pending``)
when it died are shown as ``interrupted`` too, never as still running. A node ``reused`` in
several retries shows the attempt whose result it carries, not the attempt before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from worldtree.cli.terminal import sanitize
from worldtree.model.records import LogLine, NodeRecord, RunRecord

INTERRUPTED = "interrupted"
_UNFINISHED = ("running", "pending")


def duration(start: datetime | None, end: datetime | None, *, interrupted: bool = False,
             last_seen: datetime | None = None) -> str:
    """``12.34s``; ``running`` while live; once its process is gone without an end, the time
    until its runner was last seen alive (``12.34s?``), or ``interrupted`` when that is unknown."""
    if start is None:
        return "-"
    if end is None:
        if not interrupted:
            return "running"
        if last_seen is None or last_seen < start:
            return INTERRUPTED
        return f"{(last_seen - start).total_seconds():.2f}s?"
    return f"{(end - start).total_seconds():.2f}s"


def node_state(run: RunRecord, node: NodeRecord) -> str:
    if run.state == INTERRUPTED and node.state in _UNFINISHED:
        return INTERRUPTED
    return node.state


def reused_from(node: NodeRecord, earlier: Callable[[int], list[NodeRecord]]) -> int | None:
    """The attempt whose result a ``reused`` node carries: follow reuse back to the attempt that ran it.

    ``earlier(n)`` returns attempt n's node records.
    """
    if node.state != "reused":
        return None
    attempt = node.attempt - 1
    while attempt >= 1:
        found = next((r for r in earlier(attempt) if r.node == node.node), None)
        if found is None or found.state != "reused":
            return attempt if found is not None else None
        attempt -= 1
    return None


def node_line(run: RunRecord, node: NodeRecord, origin: int | None) -> str:
    state = node_state(run, node)
    extra = f"  exit {node.exit_code}" if node.exit_code not in (None, 0) else ""
    if origin is not None:
        extra += f"  [from attempt {origin}]"
    elif node.reason:
        extra += f"  [{node.reason}]"
    extra += f"  {sanitize(node.error)}" if node.error else ""
    shown = duration(node.started_at, node.finished_at, interrupted=state == INTERRUPTED, last_seen=run.last_seen)
    return f"  {state:<11} {shown:>11}  {node.node}{extra}"


def attempt_separator(attempt: int) -> str:
    return f"── attempt {attempt} ──"


class LogPrinter:
    """Formats ``logs`` output: a separator where a new attempt starts (when the run has several),
    the node prefix unless one node was asked for, and terminal-safe text unless ``raw``."""

    def __init__(self, run: RunRecord, node: str | None, raw: bool) -> None:
        self.several = run.attempt > 1
        self.node = node
        self.raw = raw
        self.attempt: int | None = None

    def lines(self, line: LogLine) -> list[str]:
        out = []
        if self.several and line.attempt != self.attempt:
            out.append(attempt_separator(line.attempt))
        self.attempt = line.attempt
        text = line.line if self.raw else sanitize(line.line)
        out.append(text if self.node is not None and self.node == line.node else f"[{line.node}] {text}")
        return out
