"""The event log's reads and writes (table :data:`~worldtree.store.events_tables.events`).

Ids must grow in commit order, or a follower that asks for ``id > N`` skips an event whose
transaction took its id before N's but committed after it. SQLite has one writer at a time
(``BEGIN IMMEDIATE``), so its ids already do; on PostgreSQL each append first takes a
transaction-scoped advisory lock, so appends (a few per run and node state change, never per log
line) commit one after the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from worldtree.errors import StoreError
from worldtree.store.events_tables import events
from worldtree.store.schema import reason, write_transaction

#: ``pg_advisory_xact_lock`` key of event appends ("wtevt" in ASCII).
_PG_EVENTS_LOCK = 0x7774657674


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    at: datetime
    kind: str
    run_id: str | None
    data: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The payload clients get: ``{"id", "kind", "at", "run_id", ...data}``."""
        return {"id": self.id, "kind": self.kind, "at": self.at.isoformat(), "run_id": self.run_id, **self.data}


class EventLog:
    """Append and read events on the store's SQLAlchemy engine (thread-safe: the engine pools)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, items: list[tuple[str, str | None, dict[str, Any]]]) -> None:
        """Append ``(kind, run_id, data)`` events in one transaction, in order."""
        if not items:
            return
        now = datetime.now(UTC)
        try:
            with write_transaction(self.engine) as conn:
                if self.engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_EVENTS_LOCK})")
                conn.execute(events.insert(), [
                    {"at": now, "kind": kind, "run_id": run_id, "data_json": json.dumps(data, default=str)}
                    for kind, run_id, data in items])
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record events: {reason(exc)}") from exc

    def after(self, after_id: int, *, run_id: str | None = None, limit: int = 1000) -> list[Event]:
        """Events with ``id > after_id`` (of ``run_id`` only, when given), oldest first."""
        query = select(events).where(events.c.id > after_id).order_by(events.c.id).limit(limit)
        if run_id is not None:
            query = query.where(events.c.run_id == run_id)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read events: {reason(exc)}") from exc
        return [Event(int(r.id), r.at, str(r.kind), r.run_id, json.loads(r.data_json)) for r in rows]

    def forget_run(self, run_id: str) -> int:
        """Delete a (deleted) run's events; how many. Ids are never reused: followers' positions stay valid."""
        try:
            with write_transaction(self.engine) as conn:
                return int(conn.execute(events.delete().where(events.c.run_id == run_id)).rowcount or 0)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot delete the events of run {run_id}: {reason(exc)}") from exc

    def last_id(self) -> int:
        """The newest event's id (0 when there is none): where a follower that wants only new ones starts."""
        try:
            with self.engine.connect() as conn:
                found = conn.execute(select(events.c.id).order_by(events.c.id.desc()).limit(1)).scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read events: {reason(exc)}") from exc
        return int(found or 0)


def event_log(store: Any) -> EventLog:
    """The event log of a run store."""
    from worldtree.store.admission import engine_of

    return EventLog(engine_of(store))
