"""How the engine reports: every node state change and every output line goes to a listener.

Listeners run on the event loop thread and must return quickly (append to a buffer, print a
line); the store's writer batches in a thread of its own.
"""

from __future__ import annotations

from typing import Protocol

from worldtree.model.records import LogLine, NodeEvent


class EngineListener(Protocol):
    def on_event(self, event: NodeEvent) -> None: ...

    def on_log(self, line: LogLine) -> None: ...


class Fanout:
    """Sends everything to several listeners, in order."""

    def __init__(self, *listeners: EngineListener) -> None:
        self.listeners = listeners

    def on_event(self, event: NodeEvent) -> None:
        for listener in self.listeners:
            listener.on_event(event)

    def on_log(self, line: LogLine) -> None:
        for listener in self.listeners:
            listener.on_log(line)
