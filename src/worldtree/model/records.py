"""Plain records of a run: node state changes and log lines (the engine emits them, the store keeps them,
agents send them over the wire), and what the store hands back. No I/O, no ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A state change of one node in one attempt (also the ``--json`` event line)."""

    run_id: str
    attempt: int
    node: str
    state: str
    ts: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None  # skip reason, "rollback", "retrying", ...
    try_number: int = 1
    #: when the running try is stopped by a timeout / when the next try starts (wall clock; persisted
    #: so another process can take the run over)
    deadline_at: datetime | None = None
    retry_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "event": "node", "run_id": self.run_id, "attempt": self.attempt, "node": self.node,
            "state": self.state, "ts": _iso(self.ts), "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at), "exit_code": self.exit_code, "error": self.error,
            "reason": self.reason, "try": self.try_number,
        }


@dataclass(frozen=True, slots=True)
class LogLine:
    run_id: str
    attempt: int
    node: str
    stream: str  # stdout | stderr | system
    line: str
    ts: datetime
    seq: int = 0  # assigned by the store, increasing per run

    def as_json(self) -> dict[str, Any]:
        return {"event": "log", "run_id": self.run_id, "attempt": self.attempt, "node": self.node,
                "stream": self.stream, "line": self.line, "ts": _iso(self.ts)}


@dataclass(slots=True)
class NodeRecord:
    node: str
    state: str
    attempt: int
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None
    try_number: int = 1
    deadline_at: datetime | None = None  # the running try's deadline (wall clock)
    retry_at: datetime | None = None  # when a failed try's next one starts


@dataclass(slots=True)
class RunRecord:
    run_id: str
    name: str
    source: str | None
    state: str  # a RunState value; "interrupted" when its process died
    attempt: int  # the latest attempt
    workdir: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    graph_json: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # env overrides, concurrency, ... never secrets
    nodes: list[NodeRecord] = field(default_factory=list)
    cancel_reason: str | None = None  # set once a cancel was requested (``request_cancel``)
    graph_version: int = 1  # the IR schema version ``graph_json`` was written in
    #: the latest attempt's last heartbeat: how long an interrupted run got before its runner died
    last_seen: datetime | None = None
    #: the latest attempt's scope deadlines (scope id -> wall clock), for a process taking the run over
    scope_deadlines: dict[str, datetime] = field(default_factory=dict)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
