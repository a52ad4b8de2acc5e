"""Rows as the store writes them, built without SQLAlchemy (the direct SQLite path imports none)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from worldtree.model.records import LogLine, NodeEvent
from worldtree.model.states import TERMINAL, NodeState

TERMINAL_VALUES = frozenset(str(state) for state in TERMINAL)
NODE_KEYS = ("run_id", "attempt", "node", "state", "started_at", "finished_at", "exit_code", "error",
             "reason", "try_number")
STARTED_AT = NODE_KEYS.index("started_at")
LOG_KEYS = ("run_id", "attempt", "node", "seq", "ts", "stream", "line")


def utc_param(value: datetime | None, as_text: bool) -> Any:
    """``value`` as the driver wants it (UTC text for SQLite); the writer calls it directly."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware UTC")
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6] if as_text else value  # [:-6] drops +00:00


def clean(text: str) -> str:
    """Text every database takes: no NUL (PostgreSQL refuses it), no lone surrogates (not UTF-8)."""
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def latest_states(run_id: str, attempt: int, events: list[NodeEvent],
                   as_text: bool) -> list[tuple[Any, ...]]:
    """One row per node (``NODE_KEYS``): its latest event, keeping an earlier ``started_at``.

    Without explicit times, ``running`` takes ``ts`` as its start and a terminal state as its end.
    """
    rows: dict[str, tuple[Any, ...]] = {}
    for ev in events:
        started = ev.started_at or (ev.ts if ev.state == NodeState.RUNNING else None)
        finished = ev.finished_at or (ev.ts if ev.state in TERMINAL_VALUES else None)
        started_param = utc_param(started, as_text) if started is not None else None
        if started_param is None and ev.node in rows:
            started_param = rows[ev.node][STARTED_AT]
        rows[ev.node] = (run_id, attempt, ev.node, str(ev.state), started_param,
                         utc_param(finished, as_text), ev.exit_code,
                         clean(ev.error) if ev.error else ev.error, ev.reason, ev.try_number)
    return list(rows.values())


def log_rows(run_id: str, attempt: int, first_seq: int, lines: list[LogLine], as_text: bool) -> list[tuple[Any, ...]]:
    """``LOG_KEYS`` rows; ``seq`` continues from ``first_seq``."""
    return [(run_id, attempt, line.node, first_seq + i, utc_param(line.ts, as_text), line.stream, clean(line.line))
            for i, line in enumerate(lines, 1)]
